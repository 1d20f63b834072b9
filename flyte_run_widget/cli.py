"""``flyte-run-widget serve`` and ``flyte-run-widget demo``."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from .common.data_dir import DATA_DIR_ENV


def _serve(args: argparse.Namespace) -> int:
    from .server.command import run

    return run(args)


def _keys(args: argparse.Namespace) -> int:
    from .server.keys_command import run_keys

    return run_keys(args)


def _auth(args: argparse.Namespace) -> int:
    from .server.keys_command import run_auth

    return run_auth(args)


def _demo(args: argparse.Namespace) -> int:
    from .client import rpc
    from .errors import ConfigError

    if args.data_dir:
        os.environ[DATA_DIR_ENV] = str(Path(args.data_dir).resolve())
    cfg = rpc.init()
    print(f"Flyte Run service: {cfg.endpoint.target} ({cfg.source})", flush=True)
    if args.terminal:
        return _terminal_demo(args.epochs)
    notebook = _examples_dir() / "quickstart.ipynb"
    if not notebook.is_file():
        raise ConfigError(f"{notebook} is missing; run the demo from a source checkout, or use --terminal")
    if importlib.util.find_spec("jupyterlab") is None:
        raise ConfigError("JupyterLab is not installed: pip install 'flyte-run-widget[demo]'")
    cmd = [sys.executable, "-m", "jupyterlab", notebook.name, f"--ServerApp.root_dir={notebook.parent}"]
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI machines often run as root
    print("Opening JupyterLab on", notebook, flush=True)
    return subprocess.call(cmd, cwd=notebook.parent)


def _examples_dir() -> Path:
    here = Path.cwd() / "examples"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parent.parent / "examples"


def _terminal_demo(epochs: int) -> int:
    import importlib.util

    from .errors import ConfigError
    from .remote import launch

    path = _examples_dir() / "tasks.py"
    spec = importlib.util.spec_from_file_location("tasks", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise ConfigError(f"{path} is missing; run the demo from a source checkout")
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    run = launch.run(launch.Task(tasks.train, name="tasks.train"), epochs=epochs, delay=0.3)
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
    from .server.command import add_arguments

    add_arguments(serve)
    serve.set_defaults(func=_serve)
    from .server.keys_command import add_auth_arguments, add_key_arguments

    keys = sub.add_parser("api-key", help="API keys for a service started with serve --auth")
    add_key_arguments(keys)
    keys.set_defaults(func=_keys)
    auth = sub.add_parser("auth", help="approve or deny device logins to a service started with serve --auth")
    add_auth_arguments(auth)
    auth.set_defaults(func=_auth)
    demo = sub.add_parser("demo", help="open the quickstart notebook in JupyterLab on the embedded service")
    demo.add_argument("--data-dir", default=None, help="the embedded service's folder")
    demo.add_argument("--terminal", action="store_true", help="follow a run in this terminal instead")
    demo.add_argument("--no-browser", action="store_true", help="print JupyterLab's URL, open no browser")
    demo.add_argument("--epochs", type=int, default=6, help="length of the --terminal run")
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
