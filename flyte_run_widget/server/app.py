"""Starting and stopping the whole service: the gRPC server, the store and the executor.

serve(data_dir=Path("~/.flyte-run-widget").expanduser())   # blocks until SIGINT/SIGTERM
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import IO

import grpc

from .auth import Exposure, TokenAuth, check_exposure
from .executor import Executor
from .hub import Hub
from .logs_service import RunLogsService
from .paths import Layout
from .service import RunService, add_to_server
from .store import Store

log = logging.getLogger("flyte_run_widget.server")

SERVER_FILE = "server.json"
SERVER_FILE_VERSION = 1
_LOCK_FILE = "server.lock"
_MAX_MESSAGE = 64 * 1024 * 1024


class AlreadyServingError(RuntimeError):
    """Another service already uses this data folder."""


def _hold_lock(data_dir: Path) -> IO[str]:
    """Held for the service's lifetime: two services on one folder would corrupt each other's
    runs. The kernel releases it however the process ends."""
    handle = open(data_dir / _LOCK_FILE, "a+")  # noqa: SIM115 - kept open on purpose
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise AlreadyServingError(
            f"another Run service already uses {data_dir} (see {data_dir / SERVER_FILE});"
            " stop it or choose another --data-dir"
        ) from None
    return handle


def write_server_file(data_dir: Path, endpoint: str) -> Path:
    """``server.json``, written to a temporary file and renamed so readers never see half."""
    path = data_dir / SERVER_FILE
    tmp = path.with_name(f".{SERVER_FILE}.{os.getpid()}.tmp")
    info = {"endpoint": endpoint, "pid": os.getpid(), "version": SERVER_FILE_VERSION}
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)
    return path


async def serve_async(
    host: str = "127.0.0.1",
    port: int = 0,
    data_dir: Path | None = None,
    grace: float = 5.0,
    stop: asyncio.Event | None = None,
    exposure: Exposure | None = None,
    max_running: int = 0,
) -> None:
    """Serve until ``stop`` is set (or SIGINT/SIGTERM when ``stop`` is None). Off loopback,
    ``exposure`` must carry a token and TLS (see auth.check_exposure). ``max_running`` > 0
    caps the tasks running at once; later runs wait QUEUED."""
    if data_dir is None:
        raise ValueError("serve needs data_dir: the folder that keeps runs and logs")
    if exposure is None:
        exposure = check_exposure(host)
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = _hold_lock(data_dir)
    layout = Layout(data_dir)
    store = Store(layout.db)
    hub = Hub()
    executor = Executor(layout, store, hub, grace=grace, max_running=max_running)
    recovered = executor.recover()
    if recovered:
        log.warning("ended %d run(s) left unfinished by a previous service", recovered)
    runs = RunService(store, hub, executor)
    server = grpc.aio.server(
        interceptors=[TokenAuth(exposure.token)] if exposure.token else None,
        options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.so_reuseport", 0),
        ],
    )
    # Not the generated add_*_to_server: unparseable requests must get INVALID_ARGUMENT (an
    # UNKNOWN makes Flyte 2.0 clients start an OAuth flow), and TailLogs answers raw bytes.
    add_to_server(server, runs, RunLogsService(runs, layout, hub))
    if exposure.tls:
        credentials = grpc.ssl_server_credentials([exposure.tls])
        bound = server.add_secure_port(f"{host}:{port}", credentials)
    else:
        bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot listen on {host}:{port}")
    await server.start()
    endpoint = f"{host}:{bound}"
    server_file = write_server_file(data_dir, endpoint)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    guard = ", TLS, token required" if exposure.token else ""
    print(f"Flyte Run service listening on {endpoint} (data: {data_dir}{guard})", flush=True)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        with contextlib.suppress(FileNotFoundError):
            if json.loads(server_file.read_text()).get("pid") == os.getpid():
                server_file.unlink()
        await executor.shutdown("the Run service was stopped")
        await server.stop(grace=1.0)
        store.close()
        lock.close()


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    data_dir: Path | None = None,
    grace: float = 5.0,
    exposure: Exposure | None = None,
    max_running: int = 0,
) -> None:
    """Run the local Run service in this process until SIGINT or SIGTERM.

    Prints ``Flyte Run service listening on HOST:PORT (data: DIR)`` once ready and keeps
    ``DIR/server.json`` (endpoint, pid) while running.
    """
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve_async(host, port, data_dir, grace, exposure=exposure, max_running=max_running))
