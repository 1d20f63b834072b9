"""The RunService servicer: creating, reading, watching, listing and aborting runs.

Every handler is wrapped (``faults.unary`` / ``faults.streaming``) so that a failure always
reaches the client with an explicit status code, never as UNKNOWN.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import secrets
import string
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from flyteidl2.common import identifier_pb2
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_service_pb2 as rs
from flyteidl2.workflow import run_service_pb2_grpc as rs_grpc
from grpc.aio import ServicerContext as Context

from ..common import phase as phases
from ..common.idl import new_run
from . import faults, model
from .action_tree_service import ActionTreeCalls
from .executor import Executor
from .hub import ALL_RUNS, Hub, action_key, run_key, tree_key
from .listing import build_query
from .paths import check_name
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
#: A page of runs stops early when it reaches this many bytes.
PAGE_BYTES = 2 * 1024 * 1024
#: Runs per WatchRuns message at most (the flyte backend sends its snapshots in hundreds).
WATCH_BATCH = 100
#: Error messages longer than this are cut in responses (the stored message stays whole).
MAX_ERROR_CHARS = 256 * 1024
_MAX_OFFSET = 2**62


def new_run_name() -> str:
    """'r' and nine random lowercase letters and digits, as Flyte names runs."""
    return "r" + "".join(secrets.choice(_ALPHABET) for _ in range(9))


class RunService(ActionTreeCalls, rs_grpc.RunServiceServicer):  # type: ignore[misc]
    def __init__(self, store: Store, hub: Hub, executor: Executor) -> None:
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
        if request.WhichOneof("task") != "task_spec" or not task.task_template.HasField("container"):
            raise faults.invalid(
                "CreateRun needs task_spec with task_template.container (a command to run):"
                " the local Run service runs container tasks as local processes and cannot"
                " run registered tasks (task_id), triggers or other task types"
            )
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
        if request.inputs.ByteSize() > MAX_INPUTS_BYTES:
            raise faults.invalid(
                f"the inputs are {request.inputs.ByteSize():,} bytes; the local Run service accepts"
                f" at most {MAX_INPUTS_BYTES:,} bytes of inline inputs"
            )
        created = model.now_ns()
        for _ in range(5):
            details = model.new_action(
                rid, ROOT_ACTION, task, model.local_identity(), created, int(request.source)
            )
            if self.store.insert_run(details, request.run_spec, request.inputs, created):
                break
            if kind == "run_id":
                raise faults.exists(f"run {rid.name!r} already exists; choose another name")
            rid.name = new_run_name()
        else:
            raise faults.ServiceFault(grpc.StatusCode.INTERNAL, "could not pick a free run name")
        self.executor.start(details, request.run_spec, request.inputs.SerializeToString())
        self.hub.notify(ALL_RUNS)
        action = rd.Action(id=details.id, metadata=details.metadata, status=details.status)
        run = new_run(action, request.run_spec.labels.values)
        return rs.CreateRunResponse(run=run)

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

    # -- many runs ------------------------------------------------------------------------

    @faults.unary
    async def ListRuns(self, request: rs.ListRunsRequest, context: Context) -> rs.ListRunsResponse:
        where, params = _scope(request)
        query = build_query(request.request, where, params)
        if query.offset > _MAX_OFFSET:
            raise faults.invalid(f"page token {request.request.token!r} is not one this service issued")
        rows = self.store.list_runs(dataclasses.replace(query, limit=query.limit + 1))
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        runs = _fit([r.run() for r in rows], PAGE_BYTES)
        more = more or len(runs) < len(rows)
        token = format(query.offset + len(runs), "x") if more else ""
        return rs.ListRunsResponse(runs=runs, token=token)

    @faults.streaming
    async def WatchRuns(
        self, request: rs.WatchRunsRequest, context: Context
    ) -> AsyncIterator[rs.WatchRunsResponse]:
        """First the runs in the target scope as they are now (as the flyte backend's
        WatchActions does), then each run that changes. The snapshot is at least one message,
        empty when the scope has no runs, so a client knows when the watch is live; every
        message holds at most WATCH_BATCH runs and PAGE_BYTES."""
        target = request.WhichOneof("target")
        seq = 0  # the snapshot: every run changed since the first change
        snapshot = True
        while True:
            event = self.hub.waiter(ALL_RUNS)  # before reading, so no change is missed
            while True:
                # One page of the store at a time: a large store is never held whole.
                changed = self.store.changed_since(seq, WATCH_BATCH)
                if not changed:
                    break
                seq = changed[-1][0]
                runs = [row.run() for _, row in changed if _matches(request, target, row)]
                while runs:
                    page = _fit(runs, PAGE_BYTES)
                    runs = runs[len(page) :]
                    snapshot = False
                    yield rs.WatchRunsResponse(runs=page)
            if snapshot:
                snapshot = False
                yield rs.WatchRunsResponse()
            await self.hub.wait(event, timeout=30)


def _fit(runs: list[rd.Run], budget: int) -> list[rd.Run]:
    """The longest prefix of ``runs`` within ``budget`` bytes (at least one run)."""
    total = 0
    for i, run in enumerate(runs):
        total += run.ByteSize() + 8
        if total > budget and i > 0:
            return runs[:i]
    return runs


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


def _scope(request: rs.ListRunsRequest) -> tuple[list[str], list[object]]:
    where: list[str] = []
    params: list[object] = []

    def eq(column: str, value: str) -> None:
        if value:
            where.append(f"{column} = ?")
            params.append(value)

    scope = request.WhichOneof("scope_by")
    if scope == "project_id":
        eq("r.project", request.project_id.name)
        eq("r.domain", request.project_id.domain)
    elif scope == "task_name":
        eq("r.project", request.task_name.project)
        eq("r.domain", request.task_name.domain)
        eq("r.task_name", request.task_name.name)
    elif scope == "task_id":
        eq("r.project", request.task_id.project)
        eq("r.domain", request.task_id.domain)
        eq("r.task_name", request.task_id.name)
        eq("r.task_version", request.task_id.version)
    elif scope == "trigger_name":
        where.append("0")  # runs here are never started by triggers
    return where, params


def _matches(request: rs.WatchRunsRequest, target: str | None, row: RunRow) -> bool:
    if target == "project_id":
        p = request.project_id
        return (not p.name or p.name == row.project) and (not p.domain or p.domain == row.domain)
    if target == "task_id":
        t = request.task_id
        task = row.details.metadata.task.id
        return (not t.name or t.name == task.name) and (not t.version or t.version == task.version)
    return True


# The generated base class raises NotImplementedError, which grpc.aio may report as UNKNOWN;
# answer UNIMPLEMENTED explicitly instead.
for _name in rs.DESCRIPTOR.services_by_name["RunService"].methods_by_name:
    if _name not in _IMPLEMENTED:
        setattr(RunService, _name, faults.unimplemented(_name))


# -- registering the servicers ------------------------------------------------------------------


class MalformedRequest:
    """What a request that does not parse becomes, so the handler can answer INVALID_ARGUMENT
    (grpcio reports a deserializer's exception as UNKNOWN, which real Flyte clients take for
    an authentication problem)."""

    def __init__(self, type_name: str, error: Exception) -> None:
        self.type_name = type_name
        self.error = error

    def message(self) -> str:
        return f"the request is not a valid {self.type_name} message: {self.error or 'cannot be parsed'}"


def _parser(cls: Any) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return cls.FromString(data)
        except Exception as exc:  # DecodeError, or anything else protobuf raises
            return MalformedRequest(cls.DESCRIPTOR.full_name, exc)

    return parse


def _too_large(name: str, size: int) -> str:
    return (
        f"the {name} response would be {size:,} bytes, more than the {MAX_RESPONSE:,} a gRPC client"
        " accepts by default"
    )


def guard_unary(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    async def handler(request: Any, context: Context) -> Any:
        if isinstance(request, MalformedRequest):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message())
        response = await fn(request, context)
        size = response.ByteSize()
        if size > MAX_RESPONSE:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, _too_large(name, size))
        return response

    return handler


def guard_stream(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    async def handler(request: Any, context: Context) -> Any:
        if isinstance(request, MalformedRequest):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message())
        stream = fn(request, context)
        if inspect.isawaitable(stream):  # an UNIMPLEMENTED handler: it aborts
            await stream
            return
        async for response in stream:
            # TailLogs answers serialised bytes (see tail_logs_service.RunLogsService)
            size = len(response) if isinstance(response, bytes) else response.ByteSize()
            if size > MAX_RESPONSE:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, _too_large(name, size))
            yield response

    return handler


def add_to_server(server: Any, runs: RunService, logs: Any, *more: tuple[Any, Any]) -> None:
    """Register the RunService and RunLogsService servicers (and ``more`` (pb2 module, servicer)
    pairs) on a ``grpc.aio`` server, like the generated ``add_*_to_server`` functions, but so
    that a request that does not parse gets INVALID_ARGUMENT and no response goes out over
    MAX_RESPONSE."""
    from flyteidl2.workflow import run_logs_service_pb2 as rl_pb2

    for module, servicer in ((rs, runs), (rl_pb2, logs), *more):
        for service in module.DESCRIPTOR.services_by_name.values():
            handlers = {}
            for method in service.methods:
                request_cls = getattr(module, method.input_type.name)
                response_cls = getattr(module, method.output_type.name)
                fn = getattr(servicer, method.name)
                if method.client_streaming:
                    continue  # none in these services
                if method.server_streaming:
                    handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                        guard_stream(method.name, fn),
                        request_deserializer=_parser(request_cls),
                        response_serializer=_serialize,
                    )
                else:
                    handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                        guard_unary(method.name, fn),
                        request_deserializer=_parser(request_cls),
                        response_serializer=response_cls.SerializeToString,
                    )
            generic = grpc.method_handlers_generic_handler(service.full_name, handlers)
            server.add_generic_rpc_handlers((generic,))


def _serialize(response: Any) -> bytes:
    return response if type(response) is bytes else response.SerializeToString()
