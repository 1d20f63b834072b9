"""A quiet run keeps its connection: the client's keepalive pings agree with the embedded
service's ping policy and with gRPC's default policy (a server that sees pings too often
answers GOAWAY ``too_many_pings`` and drops every stream on the connection).

Minutes are scaled down to seconds with the private SCALE_ENV factor, read by the client here
and by the service started with it in its environment; the pings, the servers' ping policing
and the GOAWAY are gRPC's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import grpc
import pytest
from conftest import LocalService
from flyteidl2.common import identifier_pb2
from flyteidl2.workflow import run_definition_pb2, run_service_pb2

import flyte_run_widget as frw
from flyte_run_widget.client import loop as _loop
from flyte_run_widget.client.config import build_config
from flyte_run_widget.client.rpc import Client
from flyte_run_widget.client.streams import follow_action
from flyte_run_widget.common import keepalive as _keepalive

SCALE = 0.01  # one production minute lasts 0.6 s
GRPC_DEFAULT_MIN_PING_MS = 300_000  # what a server that sets no ping policy enforces
QUIET_S = SCALE * max(6 * 60, 4.5 * _keepalive.CLIENT_PING_MS / 1000)  # 3 strikes need 4 pings


def sleepy(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


async def _quiet_stream(request: object, context: grpc.aio.ServicerContext) -> object:
    """WatchActionDetails of a run that stays RUNNING: one message, then silence."""
    details = run_definition_pb2.ActionDetails()
    details.status.phase = 4  # RUNNING
    yield run_service_pb2.WatchActionDetailsResponse(details=details)
    await asyncio.Event().wait()


async def _default_policy_server() -> tuple[grpc.aio.Server, int]:
    """A gRPC server that leaves the ping policy at gRPC's defaults (scaled)."""
    server = grpc.aio.server(
        options=[("grpc.http2.min_ping_interval_without_data_ms", round(GRPC_DEFAULT_MIN_PING_MS * SCALE))]
    )
    handler = grpc.unary_stream_rpc_method_handler(
        _quiet_stream,
        request_deserializer=run_service_pb2.WatchActionDetailsRequest.FromString,
        response_serializer=run_service_pb2.WatchActionDetailsResponse.SerializeToString,
    )
    methods = {"WatchActionDetails": handler}
    service = grpc.method_handlers_generic_handler("flyteidl2.workflow.RunService", methods)
    server.add_generic_rpc_handlers([service])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def _watch_quietly(
    client: Client, action_id: identifier_pb2.ActionIdentifier, seconds: float, *, until_event: bool = False
) -> list[tuple[str, str]]:
    """Follow the action for ``seconds`` (or until the first connection event); every connection
    event the follower reported."""
    events: list[tuple[str, str]] = []
    phases: list[int] = []
    happened = asyncio.Event()

    def on_connection(state: str, why: str) -> None:
        events.append((state, why))
        happened.set()

    async def follow() -> None:
        async for details in follow_action(client, action_id, on_connection):
            phases.append(details.status.phase)

    task = asyncio.create_task(follow())
    try:
        if until_event:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(happened.wait(), seconds)
        else:
            done, _ = await asyncio.wait([task], timeout=seconds)
            assert not done, f"the follower ended: {task.result()!r}"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert phases and phases[0] == 4, f"the run was not running quietly: phases {phases}"
    return events


@pytest.fixture
def scaled(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(_keepalive.SCALE_ENV, str(SCALE))
    yield


@pytest.fixture
def default_server(scaled: None) -> Iterator[int]:
    server, port = _loop.run_sync(_default_policy_server())
    try:
        yield port
    finally:
        _loop.run_sync(server.stop(None))


def test_a_quiet_run_is_not_dropped(scaled, tmp_path, default_server):
    """Six quiet minutes (and at least four client pings): no GOAWAY and no reconnect, neither
    from the embedded service nor from a server with gRPC's default ping policy."""
    service = LocalService(tmp_path / "data")
    try:
        frw.init(service.endpoint, project="proj", domain="development")
        run = frw.run(sleepy, seconds=600)
        own = run.client
        other = Client(build_config(f"127.0.0.1:{default_server}"))

        async def both() -> list[list[tuple[str, str]]]:
            await own._ensure()
            channel = own._channel
            events = await asyncio.gather(
                _watch_quietly(own, run.action_id, QUIET_S),
                _watch_quietly(other, run.action_id, QUIET_S),
            )
            assert own._channel is channel, "the client reconnected"
            await other.close()
            return list(events)

        own_events, default_events = _loop.run_sync(both())
        run.abort()
    finally:
        service.stop()
    assert own_events == [], f"the embedded service dropped a quiet stream: {own_events}"
    assert default_events == [], f"a default-policy gRPC server dropped a quiet stream: {default_events}"


def test_pings_too_often_are_seen(scaled, default_server, monkeypatch):
    """The harness above sees a GOAWAY when there is one: a client pinging ten times too often
    for the server (gRPC's default policy) is told ``too_many_pings`` and reconnects."""
    monkeypatch.setenv(_keepalive.SCALE_ENV, str(SCALE / 10))
    client = Client(build_config(f"127.0.0.1:{default_server}"))
    action = identifier_pb2.ActionIdentifier(run=identifier_pb2.RunIdentifier(name="quiet"))
    events = _loop.run_sync(_watch_quietly(client, action, QUIET_S, until_event=True))
    _loop.run_sync(client.close())
    assert events and events[0][0] == "reconnecting" and "too many pings" in events[0][1].lower(), events
