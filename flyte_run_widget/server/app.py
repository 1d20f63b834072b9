"""Starting and stopping the whole service: the server (Connect, gRPC and gRPC-Web on one port),
the store and the executor.

serve(data_dir=Path("~/.flyte-run-widget").expanduser())   # blocks until SIGINT/SIGTERM
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from pathlib import Path
from typing import IO, Any

import grpc
from flyteidl2.auth import auth_service_connect
from flyteidl2.auth import auth_service_pb2 as au
from flyteidl2.cluster import service_connect
from flyteidl2.cluster import service_pb2 as cs
from flyteidl2.dataproxy import dataproxy_service_connect
from flyteidl2.dataproxy import dataproxy_service_pb2 as dp
from flyteidl2.workflow import (
    queue_service_connect,
    run_logs_service_connect,
    run_service_connect,
    state_service_connect,
)
from flyteidl2.workflow import queue_service_pb2 as qs
from flyteidl2.workflow import run_logs_service_pb2 as rl
from flyteidl2.workflow import run_service_pb2 as rs
from flyteidl2.workflow import state_service_pb2 as ss

from ..common.data_dir import SERVER_FILE
from ..common.keepalive import server_options
from ..common.net import MAX_MESSAGE_BYTES
from ..common.version import __version__
from ..errors import ServeError
from .asgi import Door, serve_hypercorn
from .auth import Exposure, ExposureError, TokenAuth, check_exposure, save_token
from .auth_store import AUTH_DB, AuthStore
from .blobs import Blobs
from .dataplane import ClusterService, DataProxyService
from .door import asgi_app
from .executor import Executor, SdkSettings
from .hub import Hub
from .oauth import AuthMetadataService, OAuthGate, OAuthSettings
from .oauth_http import OAuthEndpoints
from .pages import Pages
from .paths import Layout
from .preflight import bind, check_data_dir, listen, make_data_dir, remove_tree
from .queue_service import QueueService, StateService
from .registration import add_to_server
from .runner import run_service
from .sdk_tasks import FlytePython
from .service import RunService
from .store import Store
from .tail_logs_service import RunLogsService
from .task_env import Reach

log = logging.getLogger(__name__)

#: What a task process may call with its task token: starting and following its children.
TASK_SERVICES = frozenset({"/" + qs.DESCRIPTOR.services_by_name["QueueService"].full_name,
                           "/" + ss.DESCRIPTOR.services_by_name["StateService"].full_name})  # fmt: skip

SERVER_FILE_VERSION = 1
_LOCK_FILE = "server.lock"


class AlreadyServingError(ServeError, RuntimeError):
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
    # "started" and "package_version" are for `flyte-run-widget status`; "version" is this file's format.
    info = {
        "endpoint": endpoint,
        "pid": os.getpid(),
        "version": SERVER_FILE_VERSION,
        "started": time.time(),
        "package_version": __version__,
    }
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
    server_kind: str = "connect",
    max_running: int = 0,
    flyte_python: str | None = None,
    max_children: int = 0,
) -> None:
    """Serve until ``stop`` is set (or SIGINT/SIGTERM when ``stop`` is None). Off loopback,
    ``exposure`` must carry a token and TLS (see auth.check_exposure). ``server_kind``
    "connect" (Connect, gRPC and gRPC-Web on one port) or "grpcio" (gRPC only, the former
    server, kept for comparing the two). ``max_running`` > 0 caps the tasks running at once;
    later runs wait QUEUED; ``max_children`` > 0 caps the child actions running at once (0: as
    many as the machine has cores). ``flyte_python`` runs tasks written with the flyte SDK
    (default: $FLYTE_RUN_WIDGET_FLYTE_PYTHON, else this interpreter). A start that cannot
    succeed raises ServeError, saying why and what to change, and leaves nothing behind."""
    if data_dir is None:
        raise ValueError("serve needs data_dir: the folder that keeps runs and logs")
    if exposure is None:
        exposure = check_exposure(host)
    data_dir = Path(data_dir).expanduser().resolve()
    # Everything that can refuse comes before anything is made: a start that fails leaves no
    # data folder, token file or server.json behind.
    check_data_dir(data_dir)
    python = FlytePython.choose(flyte_python)
    grpc_server: grpc.aio.Server | None = None
    sock: socket.socket | None = None
    if server_kind == "grpcio" and exposure.oauth is not None:
        raise ExposureError("--auth needs the default server (Connect, gRPC and gRPC-Web on one port)")
    if server_kind == "grpcio":
        grpc_server = _grpcio_server(exposure)
        bound = bind(grpc_server, host, port, exposure.tls)
    else:
        sock = listen(host, port)
        bound = sock.getsockname()[1]
    undo = contextlib.ExitStack()  # what this start made, undone unless it gets to serving
    try:
        created = make_data_dir(data_dir)
        if created is not None:
            undo.callback(remove_tree, created)
        lock = _hold_lock(data_dir)
        undo.callback(lock.close)
        if exposure.new_token_file is not None and exposure.token is not None:
            save_token(exposure.new_token_file, exposure.token)
            undo.callback(exposure.new_token_file.unlink, missing_ok=True)
        layout = Layout(data_dir)
        store = Store(layout.db)
        undo.callback(store.close)
        auth_store = None
        if exposure.oauth is not None:
            auth_store = AuthStore(data_dir / AUTH_DB)
            undo.callback(auth_store.close)
            auth_store.forget_expired(exposure.oauth.leeway)
        hub = Hub()
        # Tasks call back on loopback, whatever address the service listens on.
        # Tasks get a token of their own, good for the child-action services only: the
        # service's token never enters a task's environment.
        task_token = secrets.token_urlsafe(32) if exposure.token or exposure.oauth is not None else None
        reach = Reach(_loopback(host, bound), tls=exposure.tls is not None, token=task_token)
        executor = Executor(
            layout,
            store,
            hub,
            grace=grace,
            max_running=max_running,
            max_children=max_children,
            reach=reach,
            sdk=SdkSettings(python),
        )
        recovered = executor.recover()
        if recovered:
            log.warning("ended %d action(s) left unfinished by a previous service", recovered)
        blobs = Blobs(layout.root / "blobs")
        runs = RunService(store, hub, executor, blobs)
        logs = RunLogsService(runs, layout, hub)
        if grpc_server is not None:
            # Not the generated add_*_to_server: unparseable requests must get INVALID_ARGUMENT
            # (an UNKNOWN makes Flyte 2.0 clients start an OAuth flow), and TailLogs answers raw
            # bytes.
            add_to_server(grpc_server, runs, logs, (qs, QueueService(runs)), (ss, StateService(runs)))
            await grpc_server.start()
        endpoint = f"{host}:{bound}"
        server_file = write_server_file(data_dir, endpoint)
    except BaseException:
        if grpc_server is not None:
            await grpc_server.stop(None)
        if sock is not None:
            sock.close()
        undo.close()
        raise
    undo.pop_all()
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    wire = "TLS" if exposure.tls else "plain text"
    token = "sign-in required" if exposure.oauth else "token required" if exposure.token else "no token"
    print(f"Flyte Run service listening on {endpoint} (data: {data_dir}, {wire}, {token})", flush=True)
    try:
        if sock is None:
            await stop.wait()
        else:
            oauth = None
            if auth_store is not None and exposure.oauth is not None:
                oauth = (auth_store, exposure.oauth, endpoint)
            door = connect_door(
                runs, logs, exposure.token, task_token, blobs, oauth=oauth, tls=exposure.tls is not None
            )
            await serve_hypercorn(door, sock, exposure.tls, stop)
    finally:
        log.info("stopping")
        with contextlib.suppress(FileNotFoundError):
            if json.loads(server_file.read_text()).get("pid") == os.getpid():
                server_file.unlink()
        await executor.shutdown("the Run service was stopped")
        if grpc_server is not None:
            await grpc_server.stop(grace=1.0)
        store.close()
        if auth_store is not None:
            auth_store.close()
        lock.close()


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    data_dir: Path | None = None,
    grace: float = 5.0,
    exposure: Exposure | None = None,
    server_kind: str = "connect",
    max_running: int = 0,
    flyte_python: str | None = None,
    max_children: int = 0,
    debug: bool = False,
) -> None:
    """Run the local Run service in this process until SIGINT or SIGTERM.

    Prints ``Flyte Run service listening on HOST:PORT (data: DIR, TLS|plain text, token
    required|no token)`` once ready and keeps ``DIR/server.json`` (endpoint, pid) while running.
    """
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    if debug:  # this package's details only: the libraries' debug output would drown them
        logging.getLogger("flyte_run_widget").setLevel(logging.DEBUG)
    run_service(
        serve_async(
            host,
            port,
            data_dir,
            grace,
            exposure=exposure,
            server_kind=server_kind,
            max_running=max_running,
            flyte_python=flyte_python,
            max_children=max_children,
        )
    )


def _grpcio_server(exposure: Exposure) -> grpc.aio.Server:
    return grpc.aio.server(
        interceptors=[TokenAuth(exposure.token)] if exposure.token else None,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            *server_options(),
        ],
    )


def connect_door(
    runs: RunService,
    logs: RunLogsService,
    token: str | None,
    task_token: str | None = None,
    blobs: Blobs | None = None,
    oauth: tuple[AuthStore, OAuthSettings, str] | None = None,
    tls: bool = False,
) -> Door:
    """Every service this process implements, behind connectrpc's generated applications, and
    the upload route; with ``oauth`` (store, settings, endpoint) also discovery and the OAuth2
    endpoints, and every other call checked for an access token."""
    apps = [
        asgi_app(run_service_connect.RunServiceASGIApplication, runs, _service(rs)),
        asgi_app(run_logs_service_connect.RunLogsServiceASGIApplication, logs, _service(rl)),
        # What running tasks call to start and follow their children.
        asgi_app(queue_service_connect.QueueServiceASGIApplication, QueueService(runs), _service(qs)),
        asgi_app(state_service_connect.StateServiceASGIApplication, StateService(runs), _service(ss)),
        asgi_app(service_connect.ClusterServiceASGIApplication, ClusterService(), _service(cs)),
        asgi_app(
            dataproxy_service_connect.DataProxyServiceASGIApplication,
            DataProxyService(runs, logs, blobs, tls),
            _service(dp),
        ),
    ]
    common: dict[str, Any] = {
        "uploads": blobs.handle_put if blobs is not None else None,
        "task_token": task_token,
        "task_services": TASK_SERVICES,
        "pages": Pages.from_package(),
    }
    if oauth is None:
        return Door(apps, token=token, **common)
    store, settings, endpoint = oauth
    discovery = asgi_app(
        auth_service_connect.AuthMetadataServiceASGIApplication,
        AuthMetadataService(settings, tls, endpoint),
        _service(au),
    )
    routes = OAuthEndpoints(store, settings, tls, endpoint).routes()
    return Door(apps, gate=OAuthGate(store, settings), open_apps=[discovery], routes=routes, **common)


def _loopback(host: str, port: int) -> str:
    if host in ("0.0.0.0", "", "::", "[::]"):
        return f"127.0.0.1:{port}"
    return f"{host}:{port}"


def _service(module: Any) -> Any:
    (service,) = module.DESCRIPTOR.services_by_name.values()
    return service
