"""``flyte-run-widget status`` and ``stop``: the background Run service of a data folder, as
found through its ``server.json``.

    flyte-run-widget status [--data-dir DIR] [--json]     # exit 0 running, 3 not
    flyte-run-widget stop [--data-dir DIR] [--timeout S]  # SIGTERM, then wait for it to end
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from rich.table import Table
from rich.text import Text

from .cli_output import HELP_FORMAT, Exit, inert, stdout_console
from .client.local_service import running_endpoint
from .common.data_dir import SERVER_FILE, default_data_dir
from .common.pids import pid_alive
from .errors import FlyteRunWidgetError, NoServiceError


@dataclass(frozen=True)
class ServiceInfo:
    endpoint: str
    pid: int
    started: float  # epoch seconds
    data_dir: str
    version: str  # the service's package version; "" for one older than server.json's field
    log_file: str


def data_dir_of(args: argparse.Namespace) -> Path:
    return Path(args.data_dir or default_data_dir()).expanduser().resolve()


def _is_service_process(pid: int) -> bool:
    """Whether ``pid`` runs this package (Linux; elsewhere assumed): a stale ``server.json``
    whose pid now names another program must not have that program stopped."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True  # another user's process: signalling it fails with a clear error anyway
    return b"flyte_run_widget" in cmdline or b"flyte-run-widget" in cmdline


def find_service(data_dir: Path) -> ServiceInfo | None:
    """The live service of ``data_dir``, or None (no ``server.json``, its process gone, its port
    closed, or its pid reused by another program)."""
    endpoint = running_endpoint(data_dir)
    if endpoint is None:
        return None
    path = data_dir / SERVER_FILE
    try:
        info = json.loads(path.read_text())
        pid = int(info["pid"])
        started = float(info.get("started") or path.stat().st_mtime)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # replaced or removed since running_endpoint read it
    if not _is_service_process(pid):
        return None
    version = str(info.get("package_version") or "")
    return ServiceInfo(endpoint, pid, started, str(data_dir), version, str(data_dir / "server.log"))


def not_running(data_dir: Path) -> NoServiceError:
    return NoServiceError(
        f"no Run service is running for {data_dir}: start one with `flyte-run-widget serve"
        f" --data-dir {data_dir}` (or `frw.init()` in a notebook starts one in the background),"
        " or pass --data-dir for another folder",
        code="UNAVAILABLE",
    )


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"


def status(args: argparse.Namespace) -> int:
    data_dir = data_dir_of(args)
    info = find_service(data_dir)
    console = stdout_console()
    if args.json:
        payload = {"running": info is not None, "data_dir": str(data_dir)}
        if info is not None:
            payload.update(asdict(info))
        print(json.dumps(payload), flush=True)
        return int(Exit.OK if info else Exit.NO_SERVICE)
    if info is None:
        console.print(Text.assemble(("not running", "bold yellow"), f" (data folder {inert(str(data_dir))})"))
        console.print(f"start it with: flyte-run-widget serve --data-dir {inert(str(data_dir))}")
        return int(Exit.NO_SERVICE)
    since = datetime.fromtimestamp(info.started).astimezone()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    grid.add_row("status", Text("running", style="bold green"))
    grid.add_row("endpoint", info.endpoint)
    grid.add_row("pid", str(info.pid))
    grid.add_row("since", f"{since:%Y-%m-%d %H:%M:%S %Z} ({_ago(time.time() - info.started)})")
    grid.add_row("data folder", inert(info.data_dir))
    grid.add_row("version", inert(info.version) or "unknown (a service older than 0.1.0)")
    if Path(info.log_file).is_file():  # a service started in the background by init() or demo
        grid.add_row("log", inert(info.log_file))
    console.print(grid)
    return int(Exit.OK)


def stop(args: argparse.Namespace) -> int:
    data_dir = data_dir_of(args)
    info = find_service(data_dir)
    if info is None:
        raise not_running(data_dir)
    try:
        os.kill(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # it ended on its own in between
    except PermissionError as e:
        raise FlyteRunWidgetError(
            f"the Run service for {data_dir} (pid {info.pid}) belongs to another user; stop it as that user"
        ) from e
    deadline = time.monotonic() + args.timeout
    # It aborts its running tasks first (each gets --abort-grace between SIGTERM and SIGKILL).
    while pid_alive(info.pid):
        if time.monotonic() > deadline:
            raise FlyteRunWidgetError(
                f"the Run service (pid {info.pid}) did not stop within {args.timeout:g} s; it may still"
                f" be ending its tasks (see {info.log_file}): wait, run `flyte-run-widget stop"
                f" --timeout 120`, or end it at once with `kill -9 {info.pid}`"
            )
        time.sleep(0.05)
    stdout_console().print(
        Text.assemble(("stopped", "bold"), f" the Run service on {info.endpoint} (pid {info.pid})")
    )
    return int(Exit.OK)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    data_help = f"the service's data folder (default {default_data_dir()})"
    p = sub.add_parser(
        "status",
        **HELP_FORMAT,
        help="whether the background Run service runs: endpoint, pid, since when, data folder, version",
        description="Exit code 0 when a service is running for the data folder, 3 when none is.",
    )
    p.add_argument("--data-dir", default=None, help=data_help)
    p.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    p.set_defaults(func=status)
    p = sub.add_parser(
        "stop",
        **HELP_FORMAT,
        help="stop the background Run service (its running tasks end as aborted)",
        description="SIGTERM the data folder's Run service and wait until it has ended. Exit code 0"
        " when it stopped, 3 when none was running, 1 when it did not stop in time.",
    )
    p.add_argument("--data-dir", default=None, help=data_help)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for it to end (default 60)")
    p.set_defaults(func=stop)
