"""The RunService servicer: creating, reading, watching, listing and aborting runs.

Every handler is wrapped (``faults.unary`` / ``faults.streaming``) so that a failure always
reaches the client with an explicit status code, never as UNKNOWN.
"""

from __future__ import annotations

import logging
import secrets
import string
from collections.abc import AsyncIterator, Callable

import grpc
from flyteidl2.common import identifier_pb2
from flyteidl2.task import common_pb2, task_definition_pb2
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_service_pb2 as rs
from flyteidl2.workflow import run_service_pb2_grpc as rs_grpc
from grpc.aio import ServicerContext as Context

from ..common import phase as phases
from ..common.idl import new_run
from . import faults, model
from .action_tree_service import ActionTreeCalls
from .blobs import Blobs
from .executor import Executor
from .hub import ALL_RUNS, Hub, action_key, run_key, tree_key
from .paths import check_name
from .run_list_service import RunListCalls
from .sdk_tasks import is_flyte_runtime, unsupported
from .store import ROOT_ACTION, RunRow, Store

log = logging.getLogger("flyte_run_widget.server")

_ALPHABET = string.ascii_lowercase + string.digits
_IMPLEMENTED = {
    "CreateRun", "AbortRun", "GetRunDetails", "WatchRunDetails", "GetActionDetails",
    "WatchActionDetails", "GetActionData", "ListRuns", "WatchRuns", "ListActions",
    "WatchActions", "AbortAction",
}  # fmt: skip

#: gRPC's default client receive limit: no response may be larger (the Flyte SDK keeps it).
MAX_RESPONSE = 4 * 1024 * 1024
#: What a run may carry, so that every response about it stays far below MAX_RESPONSE:
#: task spec and run spec (labels, env, ...) together, and the inline inputs.
MAX_SPEC_BYTES = 1024 * 1024
MAX_INPUTS_BYTES = 2 * 1024 * 1024
#: Error messages longer than this are cut in responses (the stored message stays whole).
MAX_ERROR_CHARS = 256 * 1024


def new_run_name() -> str:
    """'r' and nine random lowercase letters and digits, as Flyte names runs."""
    return "r" + "".join(secrets.choice(_ALPHABET) for _ in range(9))


class RunService(ActionTreeCalls, RunListCalls, rs_grpc.RunServiceServicer):  # type: ignore[misc]
    def __init__(self, store: Store, hub: Hub, executor: Executor, blobs: Blobs | None = None) -> None:
        self.blobs = blobs
        self.store = store
        self.hub = hub
        self.executor = executor

    # -- lookups --------------------------------------------------------------------------

    def find(self, run_id: identifier_pb2.RunIdentifier) -> RunRow:
        """The stored run. The org is not compared: clients derive it from the endpoint in
        odd ways (``127.0.0.1`` gives ``"127"``), and names are unique in this service."""
        if not run_id.name:
            raise faults.invalid("the run identifier has no name")
        row = self.store.get_run(run_id.name)
        if (
            row is None
            or (run_id.project and run_id.project != row.project)
            or (run_id.domain and run_id.domain != row.domain)
        ):
            where = "/".join(p for p in (run_id.project, run_id.domain) if p)
            raise faults.not_found(f"run {run_id.name!r} not found" + (f" in {where}" if where else ""))
        return row

    def find_action(self, action_id: identifier_pb2.ActionIdentifier) -> RunRow:
        """The run with ``details`` of the action named (its root when no name is given)."""
        row = self.find(action_id.run)
        if not action_id.name or action_id.name == row.details.id.name:
            return row
        child = self.store.get_action(row.name, action_id.name)
        if child is None:
            raise faults.not_found(f"run {row.name!r} has no action {action_id.name!r}")
        return child

    # -- CreateRun ------------------------------------------------------------------------

    @faults.unary
    async def CreateRun(self, request: rs.CreateRunRequest, context: Context) -> rs.CreateRunResponse:
        task = request.task_spec
        if request.WhichOneof("task") != "task_spec":
            raise faults.precondition(
                "CreateRun needs task_spec with task_template.container (a command to run):"
                " the local Run service runs container tasks as local processes and cannot"
                " run registered tasks (task_id) or triggers"
            )
        await self.check_task(task)
        kind = request.WhichOneof("id")
        if kind == "run_id":
            rid = identifier_pb2.RunIdentifier()
            rid.CopyFrom(request.run_id)
            check_name(rid.name)
        elif kind == "project_id":
            p = request.project_id
            rid = identifier_pb2.RunIdentifier(
                org=p.organization, project=p.name, domain=p.domain, name=new_run_name()
            )
        else:
            raise faults.invalid("CreateRun needs run_id (a chosen name) or project_id")
        spec_bytes = task.ByteSize() + request.run_spec.ByteSize()
        if spec_bytes > MAX_SPEC_BYTES:
            raise faults.invalid(
                f"the task spec and run spec together are {spec_bytes:,} bytes; the local Run service"
                f" accepts at most {MAX_SPEC_BYTES:,} (keep large data in inputs or files, not in"
                " labels, env or arguments)"
            )
        inputs = self._inputs(request)
        if inputs.ByteSize() > MAX_INPUTS_BYTES:
            raise faults.invalid(
                f"the inputs are {inputs.ByteSize():,} bytes; the local Run service accepts"
                f" at most {MAX_INPUTS_BYTES:,} bytes of inputs"
            )
        created = model.now_ns()
        for _ in range(5):
            details = model.new_action(
                rid, ROOT_ACTION, task, model.local_identity(), created, int(request.source)
            )
            if self.store.insert_run(details, request.run_spec, inputs, created):
                break
            if kind == "run_id":
                raise faults.exists(f"run {rid.name!r} already exists; choose another name")
            rid.name = new_run_name()
        else:
            raise faults.ServiceFault(grpc.StatusCode.INTERNAL, "could not pick a free run name")
        self.executor.start(details, request.run_spec, inputs.SerializeToString())
        self.hub.notify(ALL_RUNS)
        action = rd.Action(id=details.id, metadata=details.metadata, status=details.status)
        run = new_run(action, request.run_spec.labels.values)
        return rs.CreateRunResponse(run=run)

    async def check_task(self, task: task_definition_pb2.TaskSpec) -> None:
        """FAILED_PRECONDITION naming what this service cannot give the task, before any run
        is made of it."""
        problem = unsupported(task)
        if problem is None and is_flyte_runtime(task.task_template.container):
            sdk = self.executor.sdk
            problem = "this service cannot run flyte SDK tasks" if sdk is None else await sdk.check.problem()
        if problem is not None:
            raise faults.precondition(problem)

    def _inputs(self, request: rs.CreateRunRequest) -> common_pb2.Inputs:
        """Inline inputs, or the offloaded ones (UploadInputs) read back from this service's files."""
        uri = request.offloaded_input_data.uri
        if not uri:
            return request.inputs
        if self.blobs is None:
            raise faults.invalid("this service does not take offloaded inputs: send them inline")
        path = self.blobs.local_path(uri)
        if path.stat().st_size > MAX_INPUTS_BYTES:
            raise faults.invalid(
                f"the inputs are {path.stat().st_size:,} bytes; the local Run service accepts"
                f" at most {MAX_INPUTS_BYTES:,} bytes of inputs"
            )
        try:
            return common_pb2.Inputs.FromString(path.read_bytes())
        except Exception as exc:  # DecodeError, or anything else protobuf raises
            raise faults.invalid(f"{uri!r} does not hold flyteidl2.task.Inputs: {exc}") from exc

    # -- abort ----------------------------------------------------------------------------

    async def abort_row(self, row: RunRow, reason: str) -> None:
        """Abort the action ``row`` holds (the run's root: the whole run) and its subtree."""
        # Every request is logged, refused or not: who stopped a run, and how often, is
        # what one asks after the fact.
        action = row.details.id.name
        what = f"run {row.name}" if action == ROOT_ACTION else f"action {action} of run {row.name}"
        log.info("abort of %s requested: %r", what, reason)
        phase = row.details.status.phase
        if phases.is_terminal(phase):
            raise faults.precondition(f"{what} already finished ({phases.friendly_phase(phase)})")
        if not await self.executor.abort_tree(row.name, action, reason or "aborted by request"):
            # Not running here (it cannot be, after recovery, but never leave it hanging).
            model.abort(row.details, reason or "aborted by request", model.now_ns())
            self.store.save_action(row.details)
            self.hub.notify(run_key(row.name), ALL_RUNS, tree_key(row.name), action_key(row.name, action))

    @faults.unary
    async def AbortRun(self, request: rs.AbortRunRequest, context: Context) -> rs.AbortRunResponse:
        await self.abort_row(self.find(request.run_id), request.reason)
        return rs.AbortRunResponse()

    @faults.unary
    async def AbortAction(self, request: rs.AbortActionRequest, context: Context) -> rs.AbortActionResponse:
        await self.abort_row(self.find_action(request.action_id), request.reason)
        return rs.AbortActionResponse()

    # -- reading one run ------------------------------------------------------------------

    @faults.unary
    async def GetRunDetails(
        self, request: rs.GetRunDetailsRequest, context: Context
    ) -> rs.GetRunDetailsResponse:
        return rs.GetRunDetailsResponse(details=_bounded_run_details(self.find(request.run_id)))

    @faults.unary
    async def GetActionDetails(
        self, request: rs.GetActionDetailsRequest, context: Context
    ) -> rs.GetActionDetailsResponse:
        return rs.GetActionDetailsResponse(details=_bounded(self.find_action(request.action_id).details))

    @faults.unary
    async def GetActionData(
        self, request: rs.GetActionDataRequest, context: Context
    ) -> rs.GetActionDataResponse:
        row = self.find_action(request.action_id)
        response = rs.GetActionDataResponse(inputs=row.inputs_proto(), outputs=row.outputs_proto())
        size = response.ByteSize()
        if size > MAX_RESPONSE:
            raise faults.ServiceFault(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the inputs and outputs of run {row.name!r} are {size:,} bytes together, more than"
                f" the {MAX_RESPONSE:,} a gRPC response may carry; return large values as files",
            )
        return response

    async def _watch_changes(
        self, find: Callable[[], RunRow], build: Callable[[RunRow], object]
    ) -> AsyncIterator[object]:
        """The current state at once, then every change, ending after the final one."""
        last = b""
        while True:
            first = find()
            event = self.hub.waiter(action_key(first.name, first.details.id.name))
            row = find()
            message = build(row)
            data = message.SerializeToString()  # type: ignore[attr-defined]
            if data != last:
                last = data
                yield message
            if model.is_done(row.details):
                return
            # The timeout only guards against a missed notification.
            await self.hub.wait(event, timeout=30)

    @faults.streaming
    async def WatchRunDetails(
        self, request: rs.WatchRunDetailsRequest, context: Context
    ) -> AsyncIterator[rs.WatchRunDetailsResponse]:
        async for message in self._watch_changes(
            lambda: self.find(request.run_id),
            lambda row: rs.WatchRunDetailsResponse(details=_bounded_run_details(row)),
        ):
            yield message  # type: ignore[misc]

    @faults.streaming
    async def WatchActionDetails(
        self, request: rs.WatchActionDetailsRequest, context: Context
    ) -> AsyncIterator[rs.WatchActionDetailsResponse]:
        async for message in self._watch_changes(
            lambda: self.find_action(request.action_id),
            lambda row: rs.WatchActionDetailsResponse(details=_bounded(row.details)),
        ):
            yield message  # type: ignore[misc]


def _cut(error: rd.ErrorInfo) -> None:
    if len(error.message) > MAX_ERROR_CHARS:
        more = len(error.message) - MAX_ERROR_CHARS
        error.message = error.message[:MAX_ERROR_CHARS] + f"… ({more:,} more characters)"


def _bounded(details: rd.ActionDetails) -> rd.ActionDetails:
    """The details as sent: error messages cut to MAX_ERROR_CHARS (stored ones stay whole)."""
    long = (details.HasField("error_info") and len(details.error_info.message) > MAX_ERROR_CHARS) or any(
        len(a.error_info.message) > MAX_ERROR_CHARS for a in details.attempts
    )
    if not long:
        return details
    copy = rd.ActionDetails()
    copy.CopyFrom(details)
    if copy.HasField("error_info"):
        _cut(copy.error_info)
    for attempt in copy.attempts:
        if attempt.HasField("error_info"):
            _cut(attempt.error_info)
    return copy


def _bounded_run_details(row: RunRow) -> rd.RunDetails:
    return rd.RunDetails(run_spec=row.run_spec, action=_bounded(row.details))


# The generated base class raises NotImplementedError, which grpc.aio may report as UNKNOWN;
# answer UNIMPLEMENTED explicitly instead.
for _name in rs.DESCRIPTOR.services_by_name["RunService"].methods_by_name:
    if _name not in _IMPLEMENTED:
        setattr(RunService, _name, faults.unimplemented(_name))
