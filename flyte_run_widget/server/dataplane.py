"""What Flyte >= 2.1 clients call beside RunService: ClusterService/SelectCluster to learn where
data lives, then DataProxyService (TailLogs, GetActionData) there. Here data lives with the runs,
so SelectCluster names no endpoint (the client keeps the one it has) and the data proxy answers
from the same store and log files as RunService and RunLogsService.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from flyteidl2.cluster import payload_pb2 as cluster_pb2
from flyteidl2.common import run_pb2
from flyteidl2.dataproxy import dataproxy_service_pb2 as dp
from flyteidl2.workflow import run_service_pb2 as rs

from . import faults
from .blobs import Blobs
from .service import MAX_INPUTS_BYTES, RunService
from .tail_logs_service import RunLogsService

_Op = cluster_pb2.SelectClusterRequest.Operation
#: Operations whose services this one does not have, each with the feature a user would name.
_NOT_HERE = {
    _Op.Value("OPERATION_GET_IMAGE"): "image builds (image_builder='remote')",
    _Op.Value("OPERATION_USE_SECRETS"): "secrets",
    _Op.Value("OPERATION_UPLOAD_TRIGGER"): "triggers",
    _Op.Value("OPERATION_QUERY_RANGE_METRICS"): "metrics",
    _Op.Value("OPERATION_GET_ACTION_ATTEMPT_METRICS"): "metrics",
}


class ClusterService:
    @faults.unary
    async def SelectCluster(
        self, request: cluster_pb2.SelectClusterRequest, context: Any
    ) -> cluster_pb2.SelectClusterResponse:
        feature = _NOT_HERE.get(request.operation)
        if feature is not None:
            raise faults.precondition(
                f"the local Run service does not support {feature}; run against a Flyte cluster for it"
            )
        # An empty endpoint means "this one": every operation is served where the client is.
        return cluster_pb2.SelectClusterResponse()


class DataProxyService:
    """TailLogs with RunLogsService's semantics (ends once the attempt is final and read to the
    end, NOT_FOUND for an attempt that does not exist yet); GetActionData from the run's store."""

    def __init__(
        self, runs: RunService, logs: RunLogsService, blobs: Blobs | None = None, tls: bool = False
    ) -> None:
        self.runs = runs
        self.logs = logs
        self.blobs = blobs
        self.scheme = "https" if tls else "http"

    def _blobs(self) -> Blobs:
        if self.blobs is None:
            raise faults.precondition("this service stores no uploads")
        return self.blobs

    @faults.unary
    async def CreateUploadLocation(
        self, request: dp.CreateUploadLocationRequest, context: Any
    ) -> dp.CreateUploadLocationResponse:
        host = _host(context)
        signed, native, expires = self._blobs().upload_location(
            request.content_md5,
            request.filename,
            f"{self.scheme}://{host}",
            int(request.expires_in.ToTimedelta().total_seconds()),
            request.content_length,
        )
        response = dp.CreateUploadLocationResponse(signed_url=signed, native_url=native)
        response.expires_at.FromSeconds(expires)
        return response

    @faults.unary
    async def UploadInputs(self, request: dp.UploadInputsRequest, context: Any) -> dp.UploadInputsResponse:
        if request.HasField("task_spec"):
            await self.runs.check_task(request.task_spec)
        elif request.HasField("task_id") or request.HasField("trigger_name"):
            raise faults.precondition(
                "the local Run service runs tasks sent with their spec; registered tasks (task_id)"
                " and triggers are not supported"
            )
        data = request.inputs.SerializeToString()
        if len(data) > MAX_INPUTS_BYTES:
            raise faults.invalid(
                f"the inputs are {len(data):,} bytes; the local Run service accepts at most"
                f" {MAX_INPUTS_BYTES:,} bytes of inputs"
            )
        uri, digest = self._blobs().store_inputs(data)
        return dp.UploadInputsResponse(
            offloaded_input_data=run_pb2.OffloadedInputData(uri=uri, inputs_hash=digest)
        )

    def TailLogs(self, request: dp.TailLogsRequest, context: Any) -> AsyncIterator[Any]:
        # The request and response are wire-compatible with RunLogsService's.
        return self.logs.TailLogs(request, context)

    @faults.unary
    async def GetActionData(self, request: dp.GetActionDataRequest, context: Any) -> dp.GetActionDataResponse:
        data = await self.runs.GetActionData(rs.GetActionDataRequest(action_id=request.action_id), context)
        return dp.GetActionDataResponse(inputs=data.inputs, outputs=data.outputs)


def _host(context: Any) -> str:
    """The host and port the client reached this service by: where it can PUT, too."""
    request = getattr(context, "request", None)
    host = request.request_headers().get("host") if request is not None else None
    if not host:
        raise faults.precondition("uploads need the request's Host header (HTTP/1.1 or :authority)")
    return str(host)
