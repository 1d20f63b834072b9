"""The services a running task calls to start and follow child actions, as the flyte SDK 2.12.1's
Python task controller calls them (``flyte/_internal/controllers/remote/_core.py``,
``_informer.py``): ``flyteidl2.workflow.QueueService`` (EnqueueAction, AbortQueuedAction,
AbortQueuedRun) and ``flyteidl2.workflow.StateService`` (Watch). docs/child-actions.md says
what of the protocol is implemented.

Error codes follow what the controller does with them: ALREADY_EXISTS means "already enqueued"
(taken as started), NOT_FOUND and INVALID_ARGUMENT fail that child, ABORTED says the run is over
(aborted or ended), FAILED_PRECONDITION from AbortQueuedAction means "already final".
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from flyteidl2.common import identifier_pb2
from flyteidl2.core import execution_pb2
from flyteidl2.workflow import queue_service_pb2 as qs
from flyteidl2.workflow import state_service_pb2 as ss

from ..common import phase as phases
from ..common.idl import error_code
from . import faults, model
from .hub import action_key, tree_key
from .paths import check_name
from .service import MAX_SPEC_BYTES, RunService
from .store import ROOT_ACTION, local_path
from .tree_store import Change, changed_actions, has_action, phase_of

#: Children per read of the store while a Watch catches up (each goes out as its own message).
WATCH_PAGE = 500
_ERROR_KIND = {
    model.USER: execution_pb2.ExecutionError.USER,
    model.SYSTEM: execution_pb2.ExecutionError.SYSTEM,
}


def _local(uri: str, what: str) -> str:
    if "://" in uri and not uri.startswith("file://"):
        try:
            local_path(uri)
        except ValueError as exc:
            raise faults.invalid(f"{what}: {exc}") from None
    return uri


class QueueService:
    def __init__(self, runs: RunService) -> None:
        self.runs = runs

    @faults.unary
    async def EnqueueAction(self, request: qs.EnqueueActionRequest, context: Any) -> qs.EnqueueActionResponse:
        store, aid = self.runs.store, request.action_id
        row = self.runs.find(aid.run)
        name = check_name(aid.name, "action name")
        kind = request.WhichOneof("spec")
        if kind != "task":
            raise faults.invalid(
                f"EnqueueAction with {kind or 'no'} action: the local Run service runs task actions"
                " only (traces and conditions are not supported)"
            )
        spec = request.task.spec
        if not spec.task_template.HasField("container"):
            raise faults.invalid(
                "the child's task spec has no task_template.container: the local Run service runs"
                " container tasks as local processes only"
            )
        if spec.ByteSize() > MAX_SPEC_BYTES:
            raise faults.invalid(
                f"the child's task spec is {spec.ByteSize():,} bytes; at most {MAX_SPEC_BYTES:,}"
            )
        input_uri = _local(request.input_uri, "input_uri")
        base = _local(request.run_output_base, "run_output_base")
        if has_action(store, row.name, name):
            raise faults.exists(f"action {name!r} of run {row.name!r} is already enqueued")
        parent_name = request.parent_action_name or ROOT_ACTION
        parent_phase = phase_of(store, row.name, parent_name)
        if parent_phase is None:
            raise faults.not_found(f"run {row.name!r} has no action {parent_name!r} to be the parent")
        if phases.is_terminal(row.details.status.phase) or phases.is_terminal(parent_phase):
            raise faults.ServiceFault(
                grpc.StatusCode.ABORTED,
                f"run {row.name!r} (or its action {parent_name!r}) has ended: no more children can start",
            )
        details = model.new_action(row.details.id.run, name, spec, model.local_identity(), model.now_ns())
        details.metadata.parent = parent_name
        details.metadata.group = request.group
        if not store.insert_child(details, input_uri, base):
            raise faults.exists(f"action {name!r} of run {row.name!r} is already enqueued")
        self.runs.executor.start_child(details, row.run_spec, input_uri, base)
        self.runs.hub.notify(tree_key(row.name), action_key(row.name, name))
        return qs.EnqueueActionResponse()

    @faults.unary
    async def AbortQueuedAction(
        self, request: qs.AbortQueuedActionRequest, context: Any
    ) -> qs.AbortQueuedActionResponse:
        await self.runs.abort_row(self.runs.find_action(request.action_id), request.reason)
        return qs.AbortQueuedActionResponse()

    @faults.unary
    async def AbortQueuedRun(
        self, request: qs.AbortQueuedRunRequest, context: Any
    ) -> qs.AbortQueuedRunResponse:
        await self.runs.abort_row(self.runs.find(request.run_id), request.reason)
        return qs.AbortQueuedRunResponse()


class StateService:
    """Watch: the parent's children as they are (one ActionUpdate each), then a
    ``control_message{sentinel: true}`` (the controller waits up to 5 s for it before each
    first child), then each change; the stream ends once the parent is final."""

    def __init__(self, runs: RunService) -> None:
        self.runs = runs

    @faults.streaming
    async def Watch(self, request: ss.WatchRequest, context: Any) -> AsyncIterator[ss.WatchResponse]:
        parent_row = self.runs.find_action(request.parent_action_id)
        run, parent = parent_row.name, parent_row.details.id.name
        rid = parent_row.details.id.run
        hub, store = self.runs.hub, self.runs.store
        seq, snapshot = 0, True
        while True:
            event = hub.waiter(tree_key(run))  # before reading, so no change is missed
            while changes := changed_actions(store, run, seq, WATCH_PAGE, parent=parent):
                seq = changes[-1].seq
                for change in changes:
                    yield ss.WatchResponse(action_update=self._update(rid, change))
            if snapshot:
                snapshot = False
                yield ss.WatchResponse(control_message=ss.ControlMessage(sentinel=True))
            if phases.is_terminal(phase_of(store, run, parent) or 0):
                return
            await hub.wait(event, timeout=30)

    def _update(self, rid: identifier_pb2.RunIdentifier, change: Change) -> ss.ActionUpdate:
        action = change.action()
        base = change.output_base or str(self.runs.executor.run_base(rid.name))
        attempt = max(1, action.status.attempts)
        update = ss.ActionUpdate(
            action_id=identifier_pb2.ActionIdentifier(run=rid, name=change.name),
            phase=change.phase,  # type: ignore[arg-type]
            # Set on every update (the controller warns otherwise); outputs.pb is read from it.
            output_uri=f"{base.rstrip('/')}/{change.name}/{attempt}",
        )
        if change.phase in (model.FAILED, model.TIMED_OUT):
            row = self.runs.store.get_action(rid.name, change.name)
            if row is not None and row.details.HasField("error_info"):
                info = row.details.error_info
                update.error.CopyFrom(
                    execution_pb2.ExecutionError(
                        code=error_code(info) or "TaskFailed",
                        message=info.message,
                        kind=_ERROR_KIND.get(info.kind, execution_pb2.ExecutionError.USER),
                    )
                )
        return update


def _unimplemented(cls: type, module: Any) -> None:
    (service,) = module.DESCRIPTOR.services_by_name.values()
    for method in service.methods:
        if not hasattr(cls, method.name):
            setattr(cls, method.name, faults.unimplemented(method.name))


_unimplemented(QueueService, qs)
_unimplemented(StateService, ss)
