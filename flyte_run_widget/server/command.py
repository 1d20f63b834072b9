"""``python -m flyte_run_widget.server [--host H --token-file F --tls-cert C --tls-key K] [--port N]
[--data-dir DIR]``; ``flyte-run-widget serve`` takes the same options."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..common.data_dir import default_data_dir
from ..errors import ServeError
from .app import serve
from .auth import check_exposure
from .oauth import OAuthSettings
from .sdk_tasks import FLYTE_PYTHON_ENV

#: The environment variable that turns ``--debug`` on (the embedded service inherits it).
DEBUG_ENV = "FLYTE_RUN_WIDGET_DEBUG"


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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 366 * 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to a year")
    return value


def oauth_settings(args: argparse.Namespace) -> OAuthSettings | None:
    if not args.auth:
        return None
    return OAuthSettings(
        token_ttl=args.token_ttl, leeway=args.clock_skew, device_interval=args.device_interval
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; any other needs --auth and TLS)",
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
    parser.add_argument(
        "--auth",
        action="store_true",
        help="sign clients in as Flyte does: API keys (flyte-run-widget api-key create) and device"
        " logins (flyte-run-widget auth approve), through AuthMetadataService and an OAuth2 token"
        " endpoint on the same port",
    )
    parser.add_argument(
        "--token-ttl", type=_seconds, default=3600.0, help="seconds an access token lasts (default 3600)"
    )
    parser.add_argument(
        "--clock-skew",
        type=_seconds,
        default=60.0,
        help="seconds past its expiry a token is still taken, for clients whose clocks run behind"
        " (default 60)",
    )
    parser.add_argument(
        "--device-interval",
        type=int,
        default=5,
        choices=range(1, 61),
        metavar="SECONDS",
        help="seconds a device login waits between polls (RFC 8628; default 5)",
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
    parser.add_argument(
        "--flyte-python",
        default=None,
        help="the Python (with the flyte SDK installed) that runs tasks written with the flyte SDK"
        f" (default: ${FLYTE_PYTHON_ENV}, else this service's own Python, if it has flyte)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=os.environ.get(DEBUG_ENV, "") not in ("", "0"),
        help="log more in the service's log, such as each task's full command line"
        f" (default: off; {DEBUG_ENV}=1 turns it on)",
    )
    # The former gRPC-only server, kept to compare the two (bench/); not for users.
    parser.add_argument("--server", choices=("connect", "grpcio"), default="connect", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    try:
        exposure = check_exposure(
            args.host, args.token_file, args.tls_cert, args.tls_key, oauth=oauth_settings(args)
        )
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
            flyte_python=args.flyte_python,
            max_children=args.max_child_actions,
            debug=args.debug,
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
