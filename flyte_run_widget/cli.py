"""``flyte-run-widget``: ``serve`` and ``demo``; the background service (``status``, ``stop``,
cli_service.py); runs (``runs``, ``logs``, ``abort``, ``open``, cli_runs.py). Exit codes:
cli_output.Exit."""

from __future__ import annotations

import argparse
import sys

from .cli_output import EXIT_CODES_HELP, Exit, report
from .common.version import __version__


def _serve(args: argparse.Namespace) -> int:
    from .server.command import run

    return run(args)


def _keys(args: argparse.Namespace) -> int:
    from .server.keys_command import run_keys

    return run_keys(args)


def _auth(args: argparse.Namespace) -> int:
    from .server.keys_command import run_auth

    return run_auth(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="flyte-run-widget",
        description="Watch and control Flyte 2 runs from a notebook.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the embedded local Run service in the foreground")
    from .server.command import add_arguments

    add_arguments(serve)
    serve.set_defaults(func=_serve)
    from . import cli_demo, cli_runs, cli_service

    cli_demo.add_command(sub)
    cli_service.add_commands(sub)
    cli_runs.add_commands(sub)
    from .server.keys_command import add_auth_arguments, add_key_arguments

    keys = sub.add_parser("api-key", help="API keys for a service started with serve --auth")
    add_key_arguments(keys)
    keys.set_defaults(func=_keys)
    auth = sub.add_parser("auth", help="approve or deny device logins to a service started with serve --auth")
    add_auth_arguments(auth)
    auth.set_defaults(func=_auth)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return int(Exit.INTERRUPTED)
    except BrokenPipeError:
        # `flyte-run-widget logs RUN | head`: the reader has all it wants.
        sys.stderr.close()
        return int(Exit.OK)
    except Exception as e:
        from .errors import FlyteRunWidgetError

        if isinstance(e, FlyteRunWidgetError):
            return report(e)
        raise
