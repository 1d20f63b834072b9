"""``python -m flyte_run_widget.server [--host H] [--port N] [--data-dir DIR]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .app import AlreadyServingError, serve
from .launcher import default_data_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flyte_run_widget.server",
        description="Serve the Flyte RunService and RunLogsService locally, running tasks as"
        " local processes.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help=f"runs and logs (default {default_data_dir()})"
    )
    parser.add_argument(
        "--abort-grace",
        type=float,
        default=5.0,
        help="seconds between SIGTERM and SIGKILL when a task is aborted",
    )
    args = parser.parse_args(argv)
    try:
        serve(args.host, args.port, args.data_dir or default_data_dir(), args.abort_grace)
    except AlreadyServingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
