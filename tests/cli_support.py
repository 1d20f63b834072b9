"""What the tests of the ``flyte-run-widget`` command line share: running it as a user would (a
subprocess, output piped unless a terminal is faked) and a task that waits for a gate file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Prints `before N` lines, then waits (at most 120 s) for the file argv[1] to exist, then prints
# `after` and ends.
GATED = (
    "import os, sys, time\n"
    "for i in range(3):\n"
    "    print('before', i, flush=True)\n"
    "deadline = time.monotonic() + 120\n"
    "while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:\n"
    "    time.sleep(0.05)\n"
    "print('after', flush=True)\n"
)


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m flyte_run_widget ARGS`` with this checkout first on the path and a HOME of its
    own (no config file or data folder of this machine's user)."""
    full = dict(os.environ)
    full["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), full.get("PYTHONPATH")) if p)
    full["HOME"] = str(cwd)
    for name in ("FLYTECTL_CONFIG", "FLYTE_RUN_WIDGET_DATA", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE"):
        full.pop(name, None)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "flyte_run_widget", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
