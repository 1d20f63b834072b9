"""Bad input through the Connect and gRPC-Web doors: malformed envelopes, wrong content types, a
gzip bomb, oversize messages, JSON that does not fit, random bytes. Each gets an explicit
Connect error (never ``unknown``, never a 500), the service's memory stays bounded, and it keeps
serving, on the same connection where HTTP allows.
"""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from conftest import LocalService, ServiceClient, python_task
from flyteidl2.workflow import run_logs_service_pb2 as rl
from flyteidl2.workflow import run_service_pb2 as rs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_hostile_rpc import action_ids, list_requests, run_ids

RUNS = "/flyteidl2.workflow.RunService/"
PROXY = "/flyteidl2.dataproxy.DataProxyService/"
MAX_REQUEST = 16 * 1024 * 1024
# Codes a handler or the door may answer on purpose (INTERNAL only for a compressed envelope
# sent without compression, which the gRPC specification makes INTERNAL).
EXPLICIT = {
    "ok",
    "invalid_argument",
    "not_found",
    "failed_precondition",
    "already_exists",
    "resource_exhausted",
    "unimplemented",
}
# A watch of a run that goes on never ends by itself: the caller's deadline ends it.
WATCH_BRIEFLY = {"connect-timeout-ms": "1500"}
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


class Door:
    def __init__(self, base: Path) -> None:
        self.service = LocalService(base / "data")
        client = ServiceClient(self.service.endpoint)
        run = client.create(python_task("print('hello')"), name="done-run")
        client.wait(run.action.id)
        client.close()
        self.url = f"http://{self.service.endpoint}"
        self.http = httpx.Client(timeout=60)
        assert self.service.proc is not None
        self.process = psutil.Process(self.service.proc.pid)

    def post(
        self, path: str, body: bytes | Iterator[bytes], content_type: str, **headers: str
    ) -> httpx.Response:
        return self.http.post(
            self.url + path, content=body, headers={"content-type": content_type, **headers}
        )

    def alive(self) -> None:
        proc = self.service.proc
        assert proc is not None and proc.poll() is None, "the Run service process died"
        ok = self.post(RUNS + "ListRuns", b"{}", "application/json")
        assert ok.status_code == 200, ok.text

    def rss(self) -> int:
        return int(self.process.memory_info().rss)


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    d = Door(tmp_path_factory.mktemp("hostile-connect"))
    try:
        yield d
    finally:
        d.http.close()
        d.service.stop()


def envelope(data: bytes, flags: int = 0) -> bytes:
    return struct.pack(">BI", flags, len(data)) + data


def code_of(response: httpx.Response) -> str:
    """The Connect (or gRPC-Web) code of a response: unary errors as JSON with an HTTP status,
    stream errors in the end-of-stream message (Connect) or trailers frame (gRPC-Web)."""
    content_type = response.headers.get("content-type", "")
    assert response.status_code != 500, response.text
    if response.status_code == 415:
        return "unsupported_media_type"
    if content_type.startswith("application/grpc-web"):
        status = response.headers.get("grpc-status")
        data = response.content
        while status is None and len(data) >= 5:
            flags, size = struct.unpack(">BI", data[:5])
            if flags & 0x80:
                trailers = dict(
                    line.split(":", 1) for line in data[5 : 5 + size].decode().split("\r\n") if line
                )
                status = trailers["grpc-status"].strip()
            data = data[5 + size :]
        assert status is not None, response.content
        return "ok" if status == "0" else _GRPC[int(status)]
    if content_type.startswith("application/connect+"):
        data = response.content
        while data:
            flags, size = struct.unpack(">BI", data[:5])
            if flags & 0x02:
                end = json.loads(data[5 : 5 + size])
                return str(end["error"]["code"]) if "error" in end else "ok"
            data = data[5 + size :]
        raise AssertionError(f"a stream without its end message: {response.content[:200]!r}")
    if response.status_code == 200:
        return "ok"
    assert content_type == "application/json", (response.status_code, response.headers)
    return str(response.json()["code"])


_GRPC = {
    1: "canceled", 2: "unknown", 3: "invalid_argument", 4: "deadline_exceeded", 5: "not_found",
    6: "already_exists", 7: "permission_denied", 8: "resource_exhausted", 9: "failed_precondition",
    10: "aborted", 11: "out_of_range", 12: "unimplemented", 13: "internal", 14: "unavailable",
    15: "data_loss", 16: "unauthenticated",
}  # fmt: skip


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """gzip of 1 GiB of zeros: about a megabyte on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1024 * 1024)
    return b"".join(packer.compress(chunk) for _ in range(1024)) + packer.flush()


def test_wrong_content_types_are_415_and_the_connection_stays(door: Door) -> None:
    for content_type in (
        "text/plain",
        "application/xml",
        "application/protobuf",
        "",
        "application/connect+xml",
    ):
        response = door.post(RUNS + "ListRuns", b"x" * 200_000, content_type)
        assert response.status_code == 415, (content_type, response.status_code)
    door.alive()


def test_an_early_answer_keeps_the_http2_connection(door: Door) -> None:
    """A refusal sent before the request body is read (here: an unknown content type) must not
    take the HTTP/2 connection down with it (hypercorn drops it when more body arrives)."""
    with httpx.Client(http1=False, http2=True, timeout=60) as client:
        url = door.url + RUNS + "ListRuns"
        for _ in range(3):
            refused = client.post(url, content=b"x" * 300_000, headers={"content-type": "text/plain"})
            assert refused.status_code == 415
            ok = client.post(url, content=b"{}", headers={"content-type": "application/json"})
            assert (ok.status_code, ok.http_version) == (200, "HTTP/2")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"\x00\x00\x00\x00\x10abc", {"unimplemented", "invalid_argument"}),  # shorter than it says
        (b"\x00\x00\x00", {"unimplemented", "invalid_argument"}),  # not even a header
        (envelope(b"") * 2, {"unimplemented"}),  # two requests for a one-request call
        (envelope(b"\x0a\x00", flags=1), {"internal"}),  # compressed, without compression
        (b"\x00\xff\xff\xff\xff" + b"x" * 1000, {"unimplemented", "invalid_argument"}),  # claims 4 GiB
        (envelope(b"\xff\xff\xff"), {"invalid_argument"}),  # not a protobuf message
    ],
)
@pytest.mark.parametrize("content_type", ["application/connect+proto", "application/grpc-web+proto"])
def test_malformed_envelopes(door: Door, body: bytes, expected: set[str], content_type: str) -> None:
    response = door.post(RUNS + "WatchRunDetails", body, content_type)
    assert code_of(response) in expected
    door.alive()


def test_gzip_bomb_is_refused_without_unpacking_it(door: Door, bomb: bytes) -> None:
    before = door.rss()
    listing = RUNS + "ListRuns"
    unary = door.post(listing, bomb, "application/proto", **{"content-encoding": "gzip"})
    assert code_of(unary) == "resource_exhausted"
    assert "unpacks to more than" in unary.json()["message"]
    stream = door.post(
        RUNS + "WatchRuns", envelope(bomb, flags=1), "application/connect+proto",
        **{"connect-content-encoding": "gzip"},
    )  # fmt: skip
    assert code_of(stream) == "resource_exhausted"
    web = door.post(
        RUNS + "WatchRuns", envelope(bomb, flags=1), "application/grpc-web+proto", **{"grpc-encoding": "gzip"}
    )
    assert code_of(web) == "resource_exhausted"
    # The service unpacked at most the limit (16 MiB) per request, never the 1 GiB.
    assert door.rss() - before < 200 * 1024 * 1024, (before, door.rss())
    door.alive()


def test_bad_gzip_is_invalid_argument(door: Door) -> None:
    good = gzip.compress(rs.ListRunsRequest().SerializeToString())
    for body in (b"not gzip at all", good[:-6], good + b"trailing junk"):
        response = door.post(RUNS + "ListRuns", body, "application/proto", **{"content-encoding": "gzip"})
        assert code_of(response) == "invalid_argument", body
    door.alive()


def test_oversize_messages_are_resource_exhausted(door: Door) -> None:
    big = b"\x0a" + b"\x80" * 4 + b"x" * (MAX_REQUEST + 10)
    before = door.rss()
    declared = door.post(RUNS + "ListRuns", big, "application/proto")  # content-length says it
    assert code_of(declared) == "resource_exhausted"
    chunked = door.post(
        RUNS + "ListRuns", iter([big[i : i + 65536] for i in range(0, len(big), 65536)]), "application/proto"
    )
    assert code_of(chunked) == "resource_exhausted"
    stream = door.post(
        RUNS + "WatchRuns", iter([envelope(big)[i : i + 65536] for i in range(0, len(big) + 5, 65536)]),
        "application/connect+proto",
    )  # fmt: skip
    assert code_of(stream) == "resource_exhausted"
    assert door.rss() - before < 200 * 1024 * 1024
    door.alive()


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b'{"request": 5}',
        b'{"request": {"limit": -1}}',
        b'{"request": {"limit": "many"}}',
        b'{"noSuchField": 1}',
        b'{"projectId": {"name": ["a"]}}',
        b"\xff\xfe{}",
        b"[" * 100_000 + b"]" * 100_000,
        b'{"request": {"filters": [' + b'{"values": ["' + b"x" * 1000 + b'"]},' * 2000 + b"{}]}}",
    ],
)
def test_json_that_does_not_fit_is_invalid_argument(door: Door, body: bytes) -> None:
    response = door.post(RUNS + "ListRuns", body, "application/json")
    assert code_of(response) in {"invalid_argument", "ok"}, response.text[:300]
    if body.startswith(b'{"request": {"filters"'):
        return  # valid JSON of a valid (if silly) request
    assert code_of(response) == "invalid_argument"
    assert len(response.json()["message"]) < 4096
    door.alive()


def _paths() -> list[tuple[str, bool]]:
    from flyteidl2.dataproxy import dataproxy_service_pb2 as dp

    out = []
    for module in (rs, rl, dp):
        for service in module.DESCRIPTOR.services_by_name.values():
            out += [(f"/{service.full_name}/{m.name}", m.server_streaming) for m in service.methods]
    return out


PATHS = _paths()


@SETTINGS
@given(
    target=st.sampled_from(PATHS),
    data=st.binary(max_size=300),
    encoding=st.sampled_from(["proto", "json"]),
    gzipped=st.booleans(),
)
def test_random_bytes_through_every_door(
    door: Door, target: tuple[str, bool], data: bytes, encoding: str, gzipped: bool
) -> None:
    path, streaming = target
    if streaming:
        body = envelope(gzip.compress(data) if gzipped else data, flags=int(gzipped))
        headers = {"connect-content-encoding": "gzip"} if gzipped else {}
        response = door.post(path, body, f"application/connect+{encoding}", **headers, **WATCH_BRIEFLY)
    else:
        headers = {"content-encoding": "gzip"} if gzipped else {}
        response = door.post(
            path, gzip.compress(data) if gzipped else data, f"application/{encoding}", **headers
        )
    assert code_of(response) in EXPLICIT | {"deadline_exceeded"}
    door.alive()


@SETTINGS
@given(
    request=st.one_of(
        list_requests().map(lambda r: (RUNS + "ListRuns", rs.ListRunsRequest(request=r), False)),
        run_ids().map(lambda r: (RUNS + "GetRunDetails", rs.GetRunDetailsRequest(run_id=r), False)),
        run_ids().map(lambda r: (RUNS + "AbortRun", rs.AbortRunRequest(run_id=r), False)),
        action_ids().map(lambda a: (PROXY + "TailLogs", rl.TailLogsRequest(action_id=a), True)),
        action_ids().map(lambda a: (PROXY + "GetActionData", rs.GetActionDataRequest(action_id=a), False)),
    ),
    use_json=st.booleans(),
)
def test_hostile_messages_through_connect(
    door: Door, request: tuple[str, object, bool], use_json: bool
) -> None:
    from google.protobuf import json_format

    path, message, streaming = request
    data = (
        json_format.MessageToJson(message).encode()  # type: ignore[arg-type]
        if use_json
        else message.SerializeToString()  # type: ignore[attr-defined]
    )
    encoding = "json" if use_json else "proto"
    if streaming:
        response = door.post(path, envelope(data), f"application/connect+{encoding}", **WATCH_BRIEFLY)
    else:
        response = door.post(path, data, f"application/{encoding}")
    assert code_of(response) in EXPLICIT | {"deadline_exceeded"}
    assert len(response.content) <= 4 * 1024 * 1024 + 1024
    door.alive()
