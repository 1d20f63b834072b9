"""Make docs/cli.svg, the README's picture of the command line: the real output of ``status``,
``runs`` and ``logs`` against a fresh embedded service with three runs of examples/tasks.py
(one succeeded, one failed, one running), captured with colours and drawn by rich.

    python scripts/cli_screenshot.py [--out docs/cli.svg]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.text import Text

REPO = Path(__file__).resolve().parent.parent
WIDTH = 100


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "cli.svg")
    args = ap.parse_args()
    sys.path[:0] = [str(REPO), str(REPO / "examples")]
    import tasks  # examples/tasks.py

    import flyte_run_widget as frw

    with tempfile.TemporaryDirectory() as data:
        frw.init(data_dir=data)
        done = frw.run(tasks.train, epochs=3, delay=0.05)
        failed = frw.run(tasks.flaky_division, numerator=1.0, denominator=0.0)
        running = frw.run(tasks.long_job, minutes=5.0)
        done.wait(quiet=True)
        failed.wait(quiet=True)
        env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": str(WIDTH), "TERM": "xterm-256color"}
        console = Console(record=True, width=WIDTH, force_terminal=True, file=io.StringIO())
        try:
            for argv in (["status"], ["runs"], ["logs", done.name]):
                shown = ["flyte-run-widget", *argv]
                out = subprocess.run(
                    [sys.executable, "-m", "flyte_run_widget", *argv, "--data-dir", data],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=True,
                ).stdout
                # The temporary data folder stands for the default one a user has.
                out = out.replace(data, "~/.local/share/flyte-run-widget")
                console.print(Text("$ " + " ".join(shown), style="bold"))
                console.print(Text.from_ansi(out.rstrip("\n")))
        finally:
            running.abort()
            stop = [sys.executable, "-m", "flyte_run_widget", "stop", "--data-dir", data]
            subprocess.run(stop, check=False)
    args.out.write_text(console.export_svg(title="flyte-run-widget"))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
