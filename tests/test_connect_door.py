"""One port, every protocol: gRPC (grpcio), Connect (binary and JSON, HTTP/1.1 and HTTP/2) and
gRPC-Web reach the same service; the JSON door answers a plain HTTP client (README: debugging
with curl); the connection survives what real clients do to it over time.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from conftest import LocalService, ServiceClient, python_task
from connectrpc.codec import proto_json_codec
from connectrpc.protocol import ProtocolType
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.common import phase_pb2
from flyteidl2.workflow import run_service_pb2 as rs
from flyteidl2.workflow import run_service_pb2_grpc as rs_grpc
from flyteidl2.workflow.run_service_connect import RunServiceClient
from pyqwest import Client as HTTPClient
from pyqwest import HTTPTransport, HTTPVersion

PATH = "/flyteidl2.workflow.RunService/"


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalService, list[str]]]:
    service = LocalService(tmp_path_factory.mktemp("door") / "data")
    client = ServiceClient(service.endpoint)
    names = []
    for i in range(3):
        run = client.create(python_task(f"print({i})"), name=f"door-{i}", project="doorproj")
        client.wait(run.action.id)
        names.append(run.action.id.run.name)
    client.close()
    try:
        yield service, names
    finally:
        service.stop()


def listing(project: str = "doorproj") -> rs.ListRunsRequest:
    return rs.ListRunsRequest(project_id=ids.ProjectIdentifier(name=project, domain="development"))


def test_curl_with_json_lists_runs(door: tuple[LocalService, list[str]]) -> None:
    """What the README shows: curl -H 'content-type: application/json' -d '{...}' .../ListRuns."""
    service, names = door
    body = json.dumps({"projectId": {"name": "doorproj", "domain": "development"}})
    response = httpx.post(
        f"http://{service.endpoint}{PATH}ListRuns",
        content=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    runs = response.json()["runs"]
    assert sorted(r["action"]["id"]["run"]["name"] for r in runs) == sorted(names)
    assert {r["action"]["status"]["phase"] for r in runs} == {"ACTION_PHASE_SUCCEEDED"}
    # A mistake is a Connect error in JSON with its code, not an opaque failure.
    response = httpx.post(
        f"http://{service.endpoint}{PATH}GetRunDetails",
        content=b'{"runId": {"name": "no-such-run"}}',
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    assert "no-such-run" in response.json()["message"]


def _names(response: rs.ListRunsResponse) -> list[str]:
    return sorted(r.action.id.run.name for r in response.runs)


@pytest.mark.parametrize(
    ("protocol", "json_codec", "http2"),
    [
        (ProtocolType.CONNECT, False, False),
        (ProtocolType.CONNECT, True, False),
        (ProtocolType.CONNECT, False, True),
        (ProtocolType.GRPC, False, True),
        (ProtocolType.GRPC_WEB, False, False),
        (ProtocolType.GRPC_WEB, True, True),
    ],
)
def test_connectrpc_clients_of_every_protocol(
    door: tuple[LocalService, list[str]], protocol: ProtocolType, json_codec: bool, http2: bool
) -> None:
    service, names = door
    transport = HTTPTransport(http_version=HTTPVersion.HTTP2 if http2 else HTTPVersion.HTTP1)

    async def go() -> tuple[list[str], list[int], str]:
        client = RunServiceClient(
            f"http://{service.endpoint}",
            protocol=protocol,
            codec=proto_json_codec() if json_codec else None,
            http_client=HTTPClient(transport),
        )
        listed = _names(await client.list_runs(listing()))
        run_id = ids.RunIdentifier(name=names[0], project="doorproj", domain="development")
        phases = [
            r.details.action.status.phase
            async for r in client.watch_run_details(rs.WatchRunDetailsRequest(run_id=run_id))
        ]
        try:
            await client.get_run_details(rs.GetRunDetailsRequest(run_id=ids.RunIdentifier(name="nope")))
        except Exception as e:
            error = type(e).__name__ + ":" + str(getattr(e, "code", ""))
        return listed, phases, error

    listed, phases, error = asyncio.run(go())
    assert listed == sorted(names)
    assert phases == [phase_pb2.ACTION_PHASE_SUCCEEDED]
    assert error == "ConnectError:Code.NOT_FOUND"


def test_grpcio_and_gzip_connect_on_the_same_port(door: tuple[LocalService, list[str]]) -> None:
    service, names = door
    with grpc.insecure_channel(service.endpoint) as channel:
        assert _names(rs_grpc.RunServiceStub(channel).ListRuns(listing(), timeout=30)) == sorted(names)
    # As the flyte SDK sends it: gzip body, connect-protocol-version, over HTTP/1.1 (chunked).
    body = gzip.compress(listing().SerializeToString())
    response = httpx.post(
        f"http://{service.endpoint}{PATH}ListRuns",
        content=iter([body[:10], body[10:]]),  # an iterator: sent chunked
        headers={
            "content-type": "application/proto",
            "content-encoding": "gzip",
            "accept-encoding": "gzip",
            "connect-protocol-version": "1",
        },
        timeout=30,
    )
    assert response.status_code == 200
    assert _names(rs.ListRunsResponse.FromString(response.content)) == sorted(names)


def test_grpc_web_frames(door: tuple[LocalService, list[str]]) -> None:
    """gRPC-Web from a browser-like client: one data frame, then the trailers frame."""
    service, names = door
    message = listing().SerializeToString()
    response = httpx.post(
        f"http://{service.endpoint}{PATH}ListRuns",
        content=struct.pack(">BI", 0, len(message)) + message,
        headers={"content-type": "application/grpc-web+proto", "x-grpc-web": "1"},
        timeout=30,
    )
    data = response.content
    flags, size = struct.unpack(">BI", data[:5])
    assert flags == 0
    assert _names(rs.ListRunsResponse.FromString(data[5 : 5 + size])) == sorted(names)
    flags, size = struct.unpack(">BI", data[5 + size : 10 + size])
    assert flags == 0x80 and b"grpc-status:0" in data[10 + size :].replace(b" ", b"")


def test_long_lived_connection_outlasts_a_thousand_calls(tmp_path: Path) -> None:
    """A watch stays open on one HTTP/2 connection while more than 1,000 other calls go by (a
    notebook's channel); hypercorn's default would close the connection under it."""
    service = LocalService(tmp_path / "data")
    try:
        client = ServiceClient(service.endpoint)
        run = client.create(python_task("import time; time.sleep(600)"), name="long")
        with grpc.insecure_channel(service.endpoint) as channel:
            stub = rs_grpc.RunServiceStub(channel)
            watch = stub.WatchRunDetails(rs.WatchRunDetailsRequest(run_id=run.action.id.run), timeout=120)
            first = next(watch)
            assert first.details.action.status.phase != phase_pb2.ACTION_PHASE_ABORTED
            for _ in range(1100):
                stub.ListRuns(listing("proj"), timeout=30)
            stub.AbortRun(rs.AbortRunRequest(run_id=run.action.id.run), timeout=30)
            phases = [r.details.action.status.phase for r in watch]
        assert phases[-1] == phase_pb2.ACTION_PHASE_ABORTED
        client.close()
    finally:
        service.stop()


class Http11OnlyProxy:
    """A TCP relay that, like a proxy without HTTP/2, drops connections opening with the HTTP/2
    preface (what gRPC sends) and relays the rest."""

    PREFACE = b"PRI * HTTP/2.0"

    def __init__(self, target: str) -> None:
        import socket
        import threading

        self.target = target.rsplit(":", 1)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.refused = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            first = conn.recv(len(self.PREFACE), socket.MSG_WAITALL)
            if first.startswith(self.PREFACE[: len(first)]) and first:
                self.refused += 1
                conn.close()
                continue
            upstream = socket.create_connection((self.target[0], int(self.target[1])))
            upstream.sendall(first)
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: object, dst: object) -> None:
        import contextlib

        with contextlib.suppress(OSError):
            while data := src.recv(65536):  # type: ignore[attr-defined]
                dst.sendall(data)  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            dst.shutdown(1)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.listener.close()


def test_connect_transport_passes_a_proxy_without_http2(
    door: tuple[LocalService, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Where the flyte SDK >= 2.1 gets through (HTTP/1.1 only), init(transport="connect") does
    too; gRPC cannot."""
    import flyte_run_widget as frw
    from flyte_run_widget.errors import ServiceUnavailableError

    service, names = door
    proxy = Http11OnlyProxy(service.endpoint)
    try:
        frw.init(proxy.endpoint, project="doorproj", domain="development", transport="connect")
        run = frw.Run.get(names[1])
        run.wait(quiet=True)
        assert run.phase == "succeeded"
        run.show_logs(raw=True, filter_system=True)
        assert capsys.readouterr().out.strip() == "1"
        assert sorted(r.name for r in frw.Run.listall()) == sorted(names)
        assert proxy.refused == 0
        frw.init(proxy.endpoint, project="doorproj", domain="development", transport="grpc")
        with pytest.raises(ServiceUnavailableError):
            frw.Run.get(names[1])
        assert proxy.refused > 0
    finally:
        proxy.close()
