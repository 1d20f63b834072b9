"""JupyterLab, the kernelspec and Chromium for the browser benchmarks: tests/browser/conftest.py's
(reused, not copied). That file imports tests/conftest.py as ``conftest``, as pytest sees it, so
tests/ goes on the path (after the repository, for ``tests.browser``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _at, _path in enumerate((str(REPO), str(REPO / "tests")), start=1):
    if _path not in sys.path:
        sys.path.insert(_at, _path)

from tests.browser.conftest import (
    CHROMIUM_ARGS,
    JupyterServer,
    Lab,
    _chromium,
    code_cell,
    setup_cell,
)

__all__ = [
    "CHROMIUM_ARGS",
    "JupyterServer",
    "Lab",
    "_chromium",
    "chromium_version",
    "code_cell",
    "setup_cell",
]


def chromium_version(path: str) -> str:
    try:
        return subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
