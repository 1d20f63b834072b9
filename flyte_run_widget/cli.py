"""``flyte-run-widget serve`` and ``flyte-run-widget demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import default_data_dir


def _serve(args: argparse.Namespace) -> int:
    from .server import serve

    serve(host=args.host, port=args.port, data_dir=Path(args.data_dir))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from . import _demo, client, launch

    cfg = client.init(data_dir=args.data_dir) if args.data_dir else client.init()
    print(f"Flyte Run service: {cfg.endpoint.target} ({cfg.source})")
    run = launch.run(launch.Task(_demo.train, name="demo.train"), epochs=args.epochs, delay=0.3)
    print(f"Started run {run.name}: {run.url}")
    run.show_logs(raw=True)
    run.wait()
    print(f"outputs: {run.outputs().named}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="flyte-run-widget", description="Watch and control Flyte 2 runs from a notebook."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the embedded local Run service in the foreground")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    serve.add_argument("--data-dir", default=str(default_data_dir()), help="where runs and logs are kept")
    serve.set_defaults(func=_serve)
    demo = sub.add_parser("demo", help="start a demo run on the embedded service and follow it")
    demo.add_argument("--data-dir", default=None, help="the embedded service's folder")
    demo.add_argument("--epochs", type=int, default=6)
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        from .errors import FlyteRunWidgetError

        if isinstance(e, FlyteRunWidgetError):
            print(f"error: {e}", file=sys.stderr)
            return 1
        raise
