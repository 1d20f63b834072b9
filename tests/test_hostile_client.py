"""The client against hostile conditions: phase numbers it does not know, a connection cut in
the middle of a large message, and endpoints that are wrong, refuse, or speak the other
transport (answered within 5 s, in words a person understands). tests/test_errors.py has the
basic cases; these add what it lacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import pytest
from conftest import ServiceClient, python_task
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.workflow import run_definition_pb2 as rd

import flyte_run_widget as frw
from flyte_run_widget.client.config import build_config
from flyte_run_widget.client.rpc import Client
from flyte_run_widget.client.streams import follow_logs
from flyte_run_widget.errors import ServiceUnavailableError
from flyte_run_widget.notebook.widget import RunWidget


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- unknown phases ------------------------------------------------------------------------------


def unknown_phase_run(phase: int = 42) -> frw.Run:
    pb2 = rd.Run(
        action=rd.Action(
            id=ids.ActionIdentifier(run=ids.RunIdentifier(project="p", domain="d", name="r42"), name="a0"),
            status=rd.ActionStatus(phase=phase, attempts=1),  # type: ignore[arg-type]
        )
    )
    return frw.Run(pb2)


@pytest.mark.parametrize("phase", [42, 9, 10, 2**31 - 1, 0])
def test_unknown_phase_is_shown_not_fatal(phase):
    frw.init(f"localhost:{_free_port()}")  # never contacted: follow=False
    run = unknown_phase_run(phase)
    assert run.raw_phase == phase
    shown = run.phase
    assert shown and isinstance(shown, str)
    if phase not in (0, 9, 10):
        assert shown == f"unknown({phase})"
    assert shown in repr(run)
    assert run.done() is (phase == 10)
    w = RunWidget(run, follow=False)
    try:
        assert w.raw_phase == phase
        assert w.phase == shown
        html = w.static_html()
        assert shown.upper() in html
        data = w._repr_mimebundle_()
        bundle = data[0] if isinstance(data, tuple) else data
        assert shown in bundle["text/plain"]
        assert run.to_json() and run.to_dict()  # proto3 enums are open: no error either way
        if phase == 42:
            assert run.to_dict()["action"]["status"]["phase"] == 42
    finally:
        w.close()


# -- a connection cut mid-message --------------------------------------------------------------------


class CuttingProxy:
    """Forwards TCP to ``target``; the first connection to carry ``cut_after`` bytes from the
    service to the client is cut there (in the middle of a gRPC message), once."""

    def __init__(self, target: str, cut_after: int) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.cut_after = cut_after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.cuts = 0
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(self.target)
            limit = self.cut_after if self.cuts == 0 else None
            threading.Thread(target=self._pipe, args=(conn, upstream, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, conn, limit), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and self.cuts == 0 and sent + len(data) >= limit:
                    dst.sendall(data[: max(0, limit - sent)])
                    self.cuts += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._stop = True
        self.listener.close()


LINES = 150_000
MANY_LINES = f"import sys\nfor i in range({LINES}): sys.stdout.write(f'line {{i:06d}} ' + 'x' * 60 + chr(10))"


def test_follow_logs_survives_a_cut_mid_message(service):
    c = ServiceClient(service.endpoint)
    run = c.create(python_task(MANY_LINES), name="many-lines")
    c.wait(run.action.id, timeout=60)
    c.close()
    proxy = CuttingProxy(service.endpoint, cut_after=3 * 1024 * 1024)  # inside the 2nd response
    try:
        client = Client(build_config(proxy.endpoint, project="proj", domain="development"))
        states: list[str] = []

        async def collect() -> list[str]:
            got: list[str] = []
            try:
                async for batch in follow_logs(
                    client, run.action.id, 1, on_connection=lambda s, _: states.append(s)
                ):
                    got.extend(ln.message for ln in batch if ln.originator != 2)
            finally:
                await client.close()
            return got

        messages = asyncio.run(asyncio.wait_for(collect(), 60))
    finally:
        proxy.close()
    # Two connections (runs, log tails), then the log connection again after the cut.
    assert proxy.cuts == 1 and proxy.connections >= 3, "the connection was not cut and resumed"
    assert "reconnecting" in states
    numbers = [int(m.split()[1]) for m in messages]
    assert numbers == list(range(LINES)), "lines duplicated or missing after the cut"


# -- wrong endpoints, refused connections, TLS mismatches: fast and in plain words ---------------------


def _http_server() -> tuple[socket.socket, int]:
    """Something that is not gRPC: answers every connection with an HTTP/1.1 error."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            try:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv, int(srv.getsockname()[1])


def _timed_error(endpoint: str, **kwargs: object) -> tuple[float, str]:
    frw.init(endpoint, **kwargs)  # type: ignore[arg-type]
    start = time.monotonic()
    with pytest.raises(ServiceUnavailableError) as info:
        frw.Run.get("anything")
    return time.monotonic() - start, str(info.value)


def _plain_words(message: str) -> None:
    assert "Traceback" not in message and "AioRpcError" not in message and "StatusCode." not in message
    assert "cannot reach the Flyte Run service" in message


def test_refused_connection_is_reported_within_5_s():
    port = _free_port()
    elapsed, message = _timed_error(f"127.0.0.1:{port}")
    _plain_words(message)
    assert f"127.0.0.1:{port}" in message
    assert elapsed < 5.0, f"took {elapsed:.1f} s"
    assert "refused" in message, message


def test_host_that_does_not_exist_is_reported_within_5_s():
    elapsed, message = _timed_error("no-such-host.invalid:8089")
    _plain_words(message)
    assert "no-such-host.invalid" in message
    assert elapsed < 5.0, f"took {elapsed:.1f} s"


def test_endpoint_that_is_not_grpc_is_reported_within_5_s():
    srv, port = _http_server()
    try:
        elapsed, message = _timed_error(f"127.0.0.1:{port}")
    finally:
        srv.close()
    _plain_words(message)
    assert elapsed < 5.0, f"took {elapsed:.1f} s"


def test_tls_to_plain_service_is_reported_within_5_s(service):
    elapsed, message = _timed_error(service.endpoint, insecure=False)
    _plain_words(message)
    assert "insecure=True" in message
    assert elapsed < 5.0, f"took {elapsed:.1f} s"
