"""The RunService servicer: creating, reading, watching, listing and aborting runs.

Every handler is wrapped (``faults.unary`` / ``faults.streaming``) so that a failure always
reaches the client with an explicit status code, never as UNKNOWN.
"""

from __future__ import annotations

import dataclasses
import secrets
import string
from collections.abc import AsyncIterator, Callable

import grpc
from flyteidl2.common import identifier_pb2
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_service_pb2 as rs
from flyteidl2.workflow import run_service_pb2_grpc as rs_grpc
from grpc.aio import ServicerContext as Context

from .. import phase as phases
from . import faults, model
from .executor import Executor
from .hub import ALL_RUNS, Hub, run_key
from .listing import build_query
from .paths import check_name
from .store import ROOT_ACTION, RunRow, Store

_ALPHABET = string.ascii_lowercase + string.digits
_IMPLEMENTED = {
    "CreateRun", "AbortRun", "GetRunDetails", "WatchRunDetails", "GetActionDetails",
    "WatchActionDetails", "GetActionData", "ListRuns", "WatchRuns", "ListActions",
    "WatchActions", "AbortAction",
}  # fmt: skip


def new_run_name() -> str:
    """'r' and nine random lowercase letters and digits, as Flyte names runs."""
    return "r" + "".join(secrets.choice(_ALPHABET) for _ in range(9))


class RunService(rs_grpc.RunServiceServicer):
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
        row = self.find(action_id.run)
        if action_id.name and action_id.name != row.details.id.name:
            raise faults.not_found(
                f"run {row.name!r} has no action {action_id.name!r}; its action is {row.details.id.name!r}"
            )
        return row

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
        run = rd.Run(
            action=rd.Action(id=details.id, metadata=details.metadata, status=details.status),
            labels=dict(request.run_spec.labels.values),
        )
        return rs.CreateRunResponse(run=run)

    # -- abort ----------------------------------------------------------------------------

    async def _abort(self, row: RunRow, reason: str) -> None:
        phase = row.details.status.phase
        if phases.is_terminal(phase):
            raise faults.precondition(f"run {row.name} already finished ({phases.friendly_phase(phase)})")
        if not await self.executor.abort(row.name, reason or "aborted by request"):
            # Not running here (it cannot be, after recovery, but never leave it hanging).
            model.abort(row.details, reason or "aborted by request", model.now_ns())
            self.store.save_action(row.details)
            self.hub.notify(run_key(row.name), ALL_RUNS)

    @faults.unary
    async def AbortRun(self, request: rs.AbortRunRequest, context: Context) -> rs.AbortRunResponse:
        await self._abort(self.find(request.run_id), request.reason)
        return rs.AbortRunResponse()

    @faults.unary
    async def AbortAction(self, request: rs.AbortActionRequest, context: Context) -> rs.AbortActionResponse:
        await self._abort(self.find_action(request.action_id), request.reason)
        return rs.AbortActionResponse()

    # -- reading one run ------------------------------------------------------------------

    @faults.unary
    async def GetRunDetails(
        self, request: rs.GetRunDetailsRequest, context: Context
    ) -> rs.GetRunDetailsResponse:
        return rs.GetRunDetailsResponse(details=self.find(request.run_id).run_details())

    @faults.unary
    async def GetActionDetails(
        self, request: rs.GetActionDetailsRequest, context: Context
    ) -> rs.GetActionDetailsResponse:
        return rs.GetActionDetailsResponse(details=self.find_action(request.action_id).details)

    @faults.unary
    async def GetActionData(
        self, request: rs.GetActionDataRequest, context: Context
    ) -> rs.GetActionDataResponse:
        row = self.find_action(request.action_id)
        return rs.GetActionDataResponse(inputs=row.inputs_proto(), outputs=row.outputs_proto())

    async def _follow(
        self, find: Callable[[], RunRow], build: Callable[[RunRow], object]
    ) -> AsyncIterator[object]:
        """The current state at once, then every change, ending after the final one."""
        last = b""
        while True:
            event = self.hub.waiter(run_key(find().name))
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
        async for message in self._follow(
            lambda: self.find(request.run_id),
            lambda row: rs.WatchRunDetailsResponse(details=row.run_details()),
        ):
            yield message  # type: ignore[misc]

    @faults.streaming
    async def WatchActionDetails(
        self, request: rs.WatchActionDetailsRequest, context: Context
    ) -> AsyncIterator[rs.WatchActionDetailsResponse]:
        async for message in self._follow(
            lambda: self.find_action(request.action_id),
            lambda row: rs.WatchActionDetailsResponse(details=row.details),
        ):
            yield message  # type: ignore[misc]

    @faults.streaming
    async def WatchActions(
        self, request: rs.WatchActionsRequest, context: Context
    ) -> AsyncIterator[rs.WatchActionsResponse]:
        def build(row: RunRow) -> rs.WatchActionsResponse:
            action = row.run().action
            return rs.WatchActionsResponse(
                enriched_actions=[rd.EnrichedAction(action=action, meets_filter=True)]
            )

        async for message in self._follow(lambda: self.find(request.run_id), build):
            yield message  # type: ignore[misc]

    @faults.unary
    async def ListActions(self, request: rs.ListActionsRequest, context: Context) -> rs.ListActionsResponse:
        # Each run here has exactly one action, its root.
        row = self.find(request.run_id)
        actions = [] if request.request.token else [row.run().action]
        return rs.ListActionsResponse(actions=actions, token="")

    # -- many runs ------------------------------------------------------------------------

    @faults.unary
    async def ListRuns(self, request: rs.ListRunsRequest, context: Context) -> rs.ListRunsResponse:
        where, params = _scope(request)
        query = build_query(request.request, where, params)
        rows = self.store.list_runs(dataclasses.replace(query, limit=query.limit + 1))
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        token = format(query.offset + len(rows), "x") if more else ""
        return rs.ListRunsResponse(runs=[r.run() for r in rows], token=token)

    @faults.streaming
    async def WatchRuns(
        self, request: rs.WatchRunsRequest, context: Context
    ) -> AsyncIterator[rs.WatchRunsResponse]:
        seq = self.store.seq
        target = request.WhichOneof("target")
        while True:
            event = self.hub.waiter(ALL_RUNS)
            rows = self.store.changed_since(seq)
            seq = self.store.seq
            runs = [r.run() for r in rows if _matches(request, target, r)]
            for start in range(0, len(runs), 100):
                yield rs.WatchRunsResponse(runs=runs[start : start + 100])
            await self.hub.wait(event, timeout=30)


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
