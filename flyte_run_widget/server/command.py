"""``python -m flyte_run_widget.server [--host H --token-file F --tls-cert C --tls-key K] [--port N]
[--data-dir DIR]``; ``flyte-run-widget serve`` takes the same options."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..common.data_dir import default_data_dir
from ..errors import ServeError
from .app import serve
from .auth import check_exposure


def port_number(text: str) -> int:
    """An argparse type: a TCP port, or 0. Left to the OS, a port out of range is taken modulo
    65536 or replaced by a free one, and the service would listen where nobody looks."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: use 1 to 65535, or 0 for a free one")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other needs --token-file and TLS)",
    )
    parser.add_argument("--port", type=port_number, default=0, help="port (0 picks a free one)")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help=f"runs and logs (default {default_data_dir()})"
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help="file holding the bearer token every call must send (created with a random token"
        " if missing, mode 600)",
    )
    parser.add_argument("--tls-cert", type=Path, default=None, help="PEM certificate chain to serve TLS")
    parser.add_argument("--tls-key", type=Path, default=None, help="PEM private key of --tls-cert")
    parser.add_argument(
        "--abort-grace",
        type=float,
        default=5.0,
        help="seconds between SIGTERM and SIGKILL when a task is aborted",
    )
    parser.add_argument(
        "--max-running",
        type=int,
        default=0,
        help="tasks that may run at once; later runs wait QUEUED until one ends (default 0: no limit)",
    )
    parser.add_argument(
        "--max-child-actions",
        type=int,
        default=0,
        help="child actions (tasks started by running tasks) that may run at once; the others wait"
        " QUEUED (default 0: as many as the machine has cores)",
    )
    # The former gRPC-only server, kept to compare the two (bench/); not for users.
    parser.add_argument("--server", choices=("connect", "grpcio"), default="connect", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    try:
        exposure = check_exposure(args.host, args.token_file, args.tls_cert, args.tls_key)
        if args.max_running < 0:
            print("error: --max-running must be 0 (no limit) or more", file=sys.stderr)
            return 2
        if args.max_child_actions < 0:
            print("error: --max-child-actions must be 0 (as many as cores) or more", file=sys.stderr)
            return 2
        serve(
            args.host,
            args.port,
            args.data_dir or default_data_dir(),
            args.abort_grace,
            exposure,
            server_kind=args.server,
            max_running=args.max_running,
            max_children=args.max_child_actions,
        )
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flyte_run_widget.server",
        description="Serve Flyte's RunService, RunLogsService, ClusterService and DataProxyService"
        " (Connect, gRPC and gRPC-Web on one port) locally, running tasks as local processes.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
