"""What Flyte >= 2.1 clients call beside RunService: ClusterService/SelectCluster to learn where
data lives, then DataProxyService (TailLogs, GetActionData) there. Here data lives with the runs,
so SelectCluster names no endpoint (the client keeps the one it has) and the data proxy answers
from the same store and log files as RunService and RunLogsService.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from flyteidl2.cluster import payload_pb2 as cluster_pb2
from flyteidl2.dataproxy import dataproxy_service_pb2 as dp
from flyteidl2.workflow import run_service_pb2 as rs

from . import faults
from .service import RunService
from .tail_logs_service import RunLogsService


class ClusterService:
    @faults.unary
    async def SelectCluster(
        self, request: cluster_pb2.SelectClusterRequest, context: Any
    ) -> cluster_pb2.SelectClusterResponse:
        # An empty endpoint means "this one": every operation is served where the client is.
        return cluster_pb2.SelectClusterResponse()


class DataProxyService:
    """TailLogs with RunLogsService's semantics (ends once the attempt is final and read to the
    end, NOT_FOUND for an attempt that does not exist yet); GetActionData from the run's store."""

    def __init__(self, runs: RunService, logs: RunLogsService) -> None:
        self.runs = runs
        self.logs = logs

    def TailLogs(self, request: dp.TailLogsRequest, context: Any) -> AsyncIterator[Any]:
        # The request and response are wire-compatible with RunLogsService's.
        return self.logs.TailLogs(request, context)

    @faults.unary
    async def GetActionData(self, request: dp.GetActionDataRequest, context: Any) -> dp.GetActionDataResponse:
        data = await self.runs.GetActionData(rs.GetActionDataRequest(action_id=request.action_id), context)
        return dp.GetActionDataResponse(inputs=data.inputs, outputs=data.outputs)
