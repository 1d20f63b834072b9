"""``flyte-run-widget demo``: the quickstart notebook in JupyterLab on the embedded service, or
one run followed in the terminal (``--terminal``). Works from an installed wheel, which ships the
notebook and its ``tasks.py`` as package data (pyproject.toml); a source checkout uses examples/.

    flyte-run-widget demo [--folder DIR] [--no-browser]
    flyte-run-widget demo --terminal --epochs 3
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .common.data_dir import DATA_DIR_ENV
from .errors import ConfigError

#: The notebook and the module it imports.
DEMO_FILES = ("quickstart.ipynb", "tasks.py")
DEFAULT_FOLDER = Path("~/flyte-run-widget-demo")


def shipped_demo() -> Path:
    """Where the demo files are: inside the installed package, else in a source checkout's
    examples/."""
    package = Path(__file__).resolve().parent
    for folder in (package / "demo", package.parent / "examples"):
        if all((folder / name).is_file() for name in DEMO_FILES):
            return folder
    raise ConfigError(
        f"the demo files ({', '.join(DEMO_FILES)}) are missing from {package / 'demo'}: reinstall"
        " the package (pip install --force-reinstall flyte-run-widget)"
    )


def demo_folder(folder: str | None) -> Path:
    """A folder the user can write to that holds the demo files: a source checkout's examples/
    as they are, else a copy (files already there are kept: they may hold the user's edits)."""
    shipped = shipped_demo()
    if folder is None and shipped.name == "examples":
        return shipped
    target = Path(folder or DEFAULT_FOLDER).expanduser().resolve()
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in DEMO_FILES:
            if not (target / name).exists():
                shutil.copyfile(shipped / name, target / name)
                print(f"Copied {name} to {target}", flush=True)
    except OSError as e:
        raise ConfigError(f"cannot copy the demo notebook to {target} ({e}); pass --folder DIR") from e
    return target


def demo(args: argparse.Namespace) -> int:
    from .client import rpc

    if args.data_dir:
        os.environ[DATA_DIR_ENV] = str(Path(args.data_dir).resolve())
    cfg = rpc.init()
    print(f"Flyte Run service: {cfg.endpoint.target} ({cfg.source})", flush=True)
    if args.terminal:
        return _terminal_demo(args.epochs)
    notebook = demo_folder(args.folder) / "quickstart.ipynb"
    if importlib.util.find_spec("jupyterlab") is None:
        raise ConfigError(
            "JupyterLab is not installed: pip install 'flyte-run-widget[demo]'"
            f" (the notebook is in {notebook})"
        )
    cmd = [sys.executable, "-m", "jupyterlab", notebook.name, f"--ServerApp.root_dir={notebook.parent}"]
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI machines often run as root
    print("Opening JupyterLab on", notebook, flush=True)
    return subprocess.call(cmd, cwd=notebook.parent)


def _terminal_demo(epochs: int) -> int:
    from .remote import launch

    path = shipped_demo() / "tasks.py"
    spec = importlib.util.spec_from_file_location("tasks", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path} cannot be imported: reinstall the package")
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    run = launch.run(launch.Task(tasks.train, name="tasks.train"), epochs=epochs, delay=0.3)
    print(f"Started run {run.name}: {run.url}")
    run.show_logs(raw=True)
    run.wait()
    print(f"outputs: {run.outputs().named}")
    return 0


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="open the quickstart notebook in JupyterLab on the embedded service")
    p.add_argument("--data-dir", default=None, help="the embedded service's folder")
    p.add_argument(
        "--folder",
        default=None,
        help=f"where an installed package copies the notebook to (default {DEFAULT_FOLDER})",
    )
    p.add_argument("--terminal", action="store_true", help="follow a run in this terminal instead")
    p.add_argument("--no-browser", action="store_true", help="print JupyterLab's URL, open no browser")
    p.add_argument("--epochs", type=int, default=6, help="length of the --terminal run")
    p.set_defaults(func=demo)
