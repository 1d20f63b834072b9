"""Where the client reads logs: ClusterService/SelectCluster, then DataProxyService/TailLogs on the
endpoint it names (a channel of its own, with the same credentials) or on this one when it names
none; RunLogsService/TailLogs when the service has no ClusterService or no DataProxyService.

The services here are small grpcio fakes that record what they were asked, so each route can
only pass by being taken.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from conftest import LocalService, ServiceClient, python_task
from flyteidl2.cluster import payload_pb2 as cluster_pb2
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.dataproxy import dataproxy_service_pb2 as dp
from flyteidl2.logs.dataplane import payload_pb2 as log_pb2
from flyteidl2.workflow import run_logs_service_pb2 as rl

import flyte_run_widget as frw
from flyte_run_widget.client import loop as _loop
from flyte_run_widget.client.rpc import get_client
from flyte_run_widget.client.streams import follow_logs

KEY = "route-test-key-0123456789"
ACTION = ids.ActionIdentifier(
    run=ids.RunIdentifier(org="o", project="proj", domain="development", name="rlogs"), name="a0"
)


@dataclass
class Fake:
    """A gRPC server with the chosen services: SelectCluster answering ``endpoint`` (None: no
    ClusterService), DataProxyService and RunLogsService TailLogs sending ``lines`` prefixed
    with the service's name (False: not served)."""

    endpoint: str | None = ""
    proxy: bool = True
    legacy: bool = False
    lines: int = 5
    calls: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)
    address: str = ""

    def __post_init__(self) -> None:
        handlers = []
        if self.endpoint is not None:
            handlers.append(self._service("flyteidl2.cluster.ClusterService", "SelectCluster", False))
        if self.proxy:
            handlers.append(self._service("flyteidl2.dataproxy.DataProxyService", "TailLogs", True))
        if self.legacy:
            handlers.append(self._service("flyteidl2.workflow.RunLogsService", "TailLogs", True))
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=handlers)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"
        self.server.start()

    def _service(self, name: str, method: str, streaming: bool) -> grpc.GenericRpcHandler:
        requests = {
            "SelectCluster": cluster_pb2.SelectClusterRequest,
            "flyteidl2.dataproxy.DataProxyService": dp.TailLogsRequest,
            "flyteidl2.workflow.RunLogsService": rl.TailLogsRequest,
        }
        request_type = requests.get(method) or requests[name]
        short = name.rsplit(".", 1)[1]

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            self.calls.append((f"{short}/{method}", request, dict(context.invocation_metadata())))
            return cluster_pb2.SelectClusterResponse(cluster_endpoint=self.endpoint or "")

        def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            self.calls.append((f"{short}/{method}", request, dict(context.invocation_metadata())))
            for i in range(self.lines):
                yield rl.TailLogsResponse(
                    logs=[rl.TailLogsResponse.Logs(lines=[log_pb2.LogLine(message=f"{short} {i}\n")])]
                )

        if streaming:
            handler = grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=request_type.FromString, response_serializer=_serialize
            )
        else:
            handler = grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=request_type.FromString, response_serializer=_serialize
            )
        return grpc.method_handlers_generic_handler(name, {method: handler})

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def stop(self) -> None:
        self.server.stop(None)


def _serialize(message: Any) -> bytes:
    return message.SerializeToString()  # type: ignore[no-any-return]


def read_logs(endpoint: str) -> list[str]:
    # The fakes speak gRPC only (the real service's routes over Connect: the last test).
    frw.init(endpoint, project="proj", domain="development", api_key=KEY, transport="grpc")

    async def collect() -> list[str]:
        return [
            line.message.rstrip("\n")
            async for batch in follow_logs(get_client(), ACTION, 2)
            for line in batch
        ]

    return _loop.submit(collect()).result(timeout=60)


@pytest.fixture
def fakes() -> Iterator[list[Fake]]:
    made: list[Fake] = []
    yield made
    for fake in made:
        fake.stop()


def test_logs_come_from_the_data_plane_select_cluster_names(fakes: list[Fake]) -> None:
    data_plane = Fake(endpoint=None, lines=7)
    control = Fake(endpoint="", proxy=False, legacy=True)
    fakes += [data_plane, control]
    control.endpoint = f"dns:///{data_plane.address}"

    assert read_logs(control.address) == [f"DataProxyService {i}" for i in range(7)]

    # SelectCluster asked the control plane where TAIL_LOGS of this action go; the data plane
    # got the request, with the same token.
    ((name, select, _),) = control.calls
    assert name == "ClusterService/SelectCluster"
    assert select.operation == cluster_pb2.SelectClusterRequest.Operation.OPERATION_TAIL_LOGS
    assert select.action_id == ACTION
    ((name, tail, metadata),) = data_plane.calls
    assert (name, tail.action_id, tail.attempt) == ("DataProxyService/TailLogs", ACTION, 2)
    assert metadata["authorization"] == f"Bearer {KEY}"

    # The route is remembered: a second tail asks SelectCluster no more.
    assert read_logs(control.address)[-1] == "DataProxyService 6"
    assert control.names().count("ClusterService/SelectCluster") <= 2


def test_no_endpoint_means_the_data_proxy_of_this_service(fakes: list[Fake]) -> None:
    fake = Fake(endpoint="", proxy=True, legacy=False)
    fakes.append(fake)
    assert read_logs(fake.address) == [f"DataProxyService {i}" for i in range(5)]
    assert fake.names() == ["ClusterService/SelectCluster", "DataProxyService/TailLogs"]


def test_without_cluster_service_logs_come_from_run_logs_service(fakes: list[Fake]) -> None:
    fake = Fake(endpoint=None, proxy=False, legacy=True)
    fakes.append(fake)
    assert read_logs(fake.address) == [f"RunLogsService {i}" for i in range(5)]
    assert fake.names() == ["RunLogsService/TailLogs"]


def test_without_data_proxy_logs_come_from_run_logs_service(fakes: list[Fake]) -> None:
    fake = Fake(endpoint="", proxy=False, legacy=True)
    fakes.append(fake)
    assert read_logs(fake.address) == [f"RunLogsService {i}" for i in range(5)]
    assert fake.names() == ["ClusterService/SelectCluster", "RunLogsService/TailLogs"]


@pytest.mark.parametrize(
    ("server", "transport"), [("connect", "grpc"), ("connect", "connect"), ("grpcio", "grpc")]
)
def test_real_service_logs_over_either_server(tmp_path: Any, server: str, transport: str) -> None:
    """The local service: its data proxy (connect server, over either transport) or its
    RunLogsService (grpcio server, which has no ClusterService) give the same lines."""
    service = LocalService(tmp_path / "data", args=("--server", server))
    try:
        client = ServiceClient(service.endpoint)
        run = client.create(python_task("for i in range(2000): print(f'n {i}')"), name="rlogs")
        client.wait(run.action.id)
        client.close()
        frw.init(service.endpoint, project="proj", domain="development", transport=transport)

        async def collect() -> list[str]:
            return [
                line.message.rstrip("\n")
                async for batch in follow_logs(get_client(), run.action.id, 1)
                for line in batch
                if line.originator == log_pb2.USER
            ]

        assert _loop.submit(collect()).result(timeout=60) == [f"n {i}" for i in range(2000)]
    finally:
        service.stop()
