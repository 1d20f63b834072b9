"""Where ``rpc.Client`` reads logs: Flyte's log path since 2.1 (SelectCluster(TAIL_LOGS), then
DataProxyService/TailLogs on the endpoint it names), or RunLogsService/TailLogs on a service
that implements neither; asked once per (org, project, domain)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import grpc
from flyteidl2.cluster import payload_pb2 as cluster_pb2
from flyteidl2.cluster import service_pb2_grpc as cluster_grpc
from flyteidl2.dataproxy import dataproxy_service_pb2 as dp
from flyteidl2.dataproxy import dataproxy_service_pb2_grpc as dp_grpc

from .call_error import CallError
from .config import parse_endpoint
from .connection import UNARY_TIMEOUT, Connection
from .status import status_of

# Where logs come from, per (org, project, domain): a DataProxyService stub, or _LEGACY for a
# service without ClusterService/DataProxyService (it has RunLogsService).
_LEGACY = "RunLogsService"


class LogTails(Connection):
    async def _tail_logs(self, request: Any, what: str) -> AsyncGenerator[Any, None]:
        """Flyte's log path since 2.1: SelectCluster(TAIL_LOGS), then DataProxyService/TailLogs on
        the endpoint it names (this one when it names none); RunLogsService/TailLogs on a service
        that implements neither. The responses have the same shape either way."""
        proxy = await self._log_route(request.action_id, what)
        if proxy is not _LEGACY:
            tail = dp.TailLogsRequest(action_id=request.action_id, attempt=request.attempt)
            responses: AsyncGenerator[Any, None]
            if self._connect is not None:
                responses = self._connect.tail_logs(proxy, tail, self._headers())
            else:
                responses = self._grpc_stream(proxy.TailLogs(tail, metadata=self._metadata()))
            answered = False
            try:
                async for item in responses:
                    answered = True
                    yield item
                return
            except (grpc.aio.AioRpcError, CallError) as e:
                if status_of(e)[0] != grpc.StatusCode.UNIMPLEMENTED or answered:
                    raise
                self._log_routes[_scope(request.action_id)] = _LEGACY
            finally:
                await responses.aclose()
        legacy: AsyncGenerator[Any, None]
        if self._connect is not None:
            legacy = self._connect.stream("TailLogs", request, self._headers())
        else:
            assert self._logs is not None
            legacy = self._grpc_stream(self._logs.TailLogs(request, metadata=self._metadata()))
        try:
            async for item in legacy:
                yield item
        finally:
            await legacy.aclose()

    async def _log_route(self, action_id: Any, what: str) -> Any:
        key = _scope(action_id)
        route = self._log_routes.get(key)
        if route is not None:
            return route
        select = cluster_pb2.SelectClusterRequest(
            operation=cluster_pb2.SelectClusterRequest.Operation.OPERATION_TAIL_LOGS, action_id=action_id
        )
        try:
            if self._connect is not None:
                resp = await self._connect.select_cluster(select, self._headers(), UNARY_TIMEOUT)
            else:
                assert self._channel is not None
                resp = await cluster_grpc.ClusterServiceStub(self._channel).SelectCluster(
                    select, metadata=self._metadata(), timeout=UNARY_TIMEOUT
                )
        except (grpc.aio.AioRpcError, CallError) as e:
            if status_of(e)[0] != grpc.StatusCode.UNIMPLEMENTED:
                raise
            route = _LEGACY
        else:
            if self._connect is not None:
                route = self._connect.proxy(resp.cluster_endpoint)
            else:
                route = dp_grpc.DataProxyServiceStub(self._data_channel(resp.cluster_endpoint))
        self._log_routes[key] = route
        return route

    def _data_channel(self, endpoint: str) -> grpc.aio.Channel:
        """The log channel for this endpoint; a new one, with the same TLS settings and token,
        for another."""
        assert self._log_channel is not None
        target = parse_endpoint(endpoint).target if endpoint else ""
        if not target or target == self.config.endpoint.target:
            return self._log_channel
        if target not in self._data_channels:
            self._data_channels[target] = self._new_channel(own_connection=True, target=target)
        return self._data_channels[target]


def _scope(action_id: Any) -> tuple[str, str, str]:
    run = action_id.run
    return (run.org, run.project, run.domain)
