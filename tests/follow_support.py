"""What the tests of ``_follow`` share: a gated counter task, a TCP proxy in front of the real
service that cuts or refuses connections on demand, and the fixtures built on them."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from conftest import LocalService, ServiceClient, python_task
from flyteidl2.logs.dataplane import payload_pb2
from mutation_support import stopped_on_sigxcpu

from flyte_run_widget.client import streams as _follow
from flyte_run_widget.client.config import build_config
from flyte_run_widget.client.rpc import Client

# Prints `n` numbered lines, each once the file argv[3] exists if `gated`, `delay` s apart.
COUNTER = (
    "import os, sys, time\n"
    "n, delay, gate = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]\n"
    "for i in range(n):\n"
    "    print('line', i, flush=True)\n"
    "    if i == n // 2:\n"
    "        deadline = time.monotonic() + 60\n"
    "        while gate and not os.path.exists(gate) and time.monotonic() < deadline:\n"
    "            time.sleep(0.02)\n"
    "    time.sleep(delay)\n"
)


def counter(n: int, delay: float = 0.0, gate: Path | str = "") -> object:
    """A task printing n lines; with a gate, it stops after line n // 2 until the gate exists."""
    return python_task(COUNTER, str(n), str(delay), str(gate))


class Proxy:
    """TCP to the service; ``cut()`` breaks open connections, ``refusing`` makes new ones close
    at once (a service that is away)."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.refusing = threading.Event()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []  # in the order they came
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing.is_set():
                conn.close()
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open |= {conn, upstream}
                self.pairs.append((conn, upstream))
            threading.Thread(target=self._pipe, args=(conn, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, conn), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        self._drop(src, dst)

    def _drop(self, *socks: socket.socket) -> None:
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
            with self._lock:
                self._open.discard(s)

    def cut(self, index: int | None = None) -> None:
        """Break every open connection, or only the ``index``-th one accepted."""
        with self._lock:
            socks = list(self._open) if index is None else list(self.pairs[index])
        self._drop(*socks)

    def close(self) -> None:
        self.listener.close()
        self.cut()


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    service = LocalService(tmp_path_factory.mktemp("follow") / "data")
    try:
        with stopped_on_sigxcpu(service):
            yield service
    finally:
        service.stop()


@pytest.fixture
def raw(svc: LocalService) -> Iterator[ServiceClient]:
    c = ServiceClient(svc.endpoint)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def proxy(svc: LocalService) -> Iterator[Proxy]:
    p = Proxy(svc.endpoint)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_follow, "BACKOFF_START", 0.001)
    monkeypatch.setattr(_follow, "BACKOFF_MAX", 0.006)


def client_for(endpoint: str) -> Client:
    return Client(build_config(endpoint, project="proj", domain="development"))


class CountingClient(Client):
    """The real client, counting the TailLogs subscriptions it opens."""

    tails = 0

    def stream(self, name: str, request: object, *, what: str = "") -> AsyncIterator[object]:
        if name == "TailLogs":
            self.tails += 1
        return super().stream(name, request, what=what)


def user_text(batch: object) -> list[str]:
    return [ln.message.rstrip("\n") for ln in batch if ln.originator == payload_pb2.USER]  # type: ignore[attr-defined]


UNREACHABLE = "cannot reach the Flyte Run service at "


def run_async(coro: object, timeout: float = 90) -> object:
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]
