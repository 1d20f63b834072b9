"""Child actions from inside a task process, through the RPCs the flyte SDK's Python task
controller uses: the parent writes the child's inputs under the run base, asks
``QueueService/EnqueueAction``, and learns its end from one ``StateService/Watch`` of its
children (a snapshot, a sentinel, then changes); the result is ``{output_uri}/outputs.pb``.

    controller = Controller.from_env()        # RUN_NAME, ACTION_NAME, _U_RUN_BASE, _U_EP_OVERRIDE...
    value = controller.call(spec, inputs, "train", group="")           # blocks
    value = await controller.call_async(spec, inputs, "train", group="")

The controller runs its own event loop on a daemon thread, so sync and async parents share it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import itertools
import os
import threading
from pathlib import Path
from typing import Any

import cloudpickle
import grpc
from flyteidl2.common import identifier_pb2, phase_pb2
from flyteidl2.task import common_pb2, task_definition_pb2
from flyteidl2.workflow import (
    queue_service_pb2,
    queue_service_pb2_grpc,
    run_definition_pb2,
    state_service_pb2,
    state_service_pb2_grpc,
)

from ..errors import ChildActionError, ChildActionUnavailableError
from .context import ERROR_PICKLE

TOKEN_VAR = "FLYTE_RUN_WIDGET_TASK_TOKEN"  # as server/task_env.py names it
_ENQUEUE_SECONDS = 30.0
_SENTINEL_SECONDS = 5.0
_ENQUEUE_TRIES = 40
# EnqueueAction calls in flight at once. Each call's deadline runs while it waits for an HTTP/2
# stream too: 10,000 started together timed out in the channel's queue, were retried, and
# timed out again, and the fan-out stalled (2,438 of 10,001 actions after 15 minutes).
_ENQUEUE_IN_FLIGHT = 64
# What the SDK's controller retries too: the service restarting, busy, or slow.
_RETRIED = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION,
}
_TERMINAL = {
    phase_pb2.ACTION_PHASE_SUCCEEDED,
    phase_pb2.ACTION_PHASE_FAILED,
    phase_pb2.ACTION_PHASE_ABORTED,
    phase_pb2.ACTION_PHASE_TIMED_OUT,
}
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _local(uri: str) -> Path:
    return Path(uri[len("file://") :] if uri.startswith("file://") else uri)


def child_name(run: str, parent: str, task: str, seq: int) -> str:
    """Deterministic, as the SDK's: a parent's retry finds the children it had enqueued."""
    n = int(hashlib.md5(f"{run}/{parent}/{task}/{seq}".encode()).hexdigest(), 16)
    out = ""
    while n and len(out) < 20:
        n, r = divmod(n, 36)
        out += _BASE36[r]
    return "c" + out


class Controller:
    def __init__(
        self, endpoint: str, token: str | None, run: identifier_pb2.RunIdentifier, parent: str, base: str
    ):
        self.run = run
        self.parent = parent
        self.base = base
        self._endpoint = endpoint
        self._token = token
        self._seq = itertools.count()
        self._waiting: dict[str, asyncio.Future[state_service_pb2.ActionUpdate]] = {}
        self._ended: dict[str, state_service_pb2.ActionUpdate] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="child-actions", daemon=True)
        self._thread.start()
        self._ready: asyncio.Event | None = None
        self._watch: asyncio.Task[None] | None = None
        self._channel: grpc.aio.Channel | None = None
        self._enqueue_slots: asyncio.Semaphore | None = None

    @classmethod
    def from_env(cls) -> Controller:
        env = os.environ
        endpoint = env.get("_U_EP_OVERRIDE", "")
        if not endpoint or not env.get("RUN_NAME") or not env.get("ACTION_NAME"):
            raise ChildActionUnavailableError(
                "this task was not started by a Run service that runs child actions (no _U_EP_OVERRIDE,"
                " RUN_NAME or ACTION_NAME): start it with flyte_run_widget.run(...), or call the"
                " function itself (task.fn) to run it in this process"
            )
        if env.get("_U_INSECURE", "true").lower() != "true":
            raise ChildActionUnavailableError(
                "child actions reach the Run service on loopback in plain text; this service serves"
                " TLS only: serve on 127.0.0.1 without --tls-cert to run tasks that start tasks"
            )
        run = identifier_pb2.RunIdentifier(
            org=env.get("_U_ORG_NAME", ""),
            project=env.get("FLYTE_INTERNAL_EXECUTION_PROJECT", ""),
            domain=env.get("FLYTE_INTERNAL_EXECUTION_DOMAIN", ""),
            name=env["RUN_NAME"],
        )
        return cls(endpoint, env.get(TOKEN_VAR) or None, run, env["ACTION_NAME"], env.get("_U_RUN_BASE", ""))

    # -- calls from the task's code (any thread) ------------------------------------------------

    def call(self, spec: task_definition_pb2.TaskSpec, inputs: common_pb2.Inputs, group: str) -> Any:
        return self._submit(spec, inputs, group).result()

    async def call_async(
        self, spec: task_definition_pb2.TaskSpec, inputs: common_pb2.Inputs, group: str
    ) -> Any:
        return await asyncio.wrap_future(self._submit(spec, inputs, group))

    def _submit(
        self, spec: task_definition_pb2.TaskSpec, inputs: common_pb2.Inputs, group: str
    ) -> concurrent.futures.Future[Any]:
        # The name is taken now, in call order, so that it does not depend on scheduling.
        name = child_name(self.run.name, self.parent, spec.task_template.id.name, next(self._seq))
        return asyncio.run_coroutine_threadsafe(self._child(name, spec, inputs, group), self._loop)

    def close(self) -> None:
        async def stop() -> None:
            if self._watch is not None:
                self._watch.cancel()
            if self._channel is not None:
                await self._channel.close(None)

        if self._loop.is_running():
            # The task's own result is what matters here: a slow close must not fail it.
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(stop(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)

    # -- on the controller's loop -------------------------------------------------------------

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self._token}"),) if self._token else ()

    async def _child(
        self, name: str, spec: task_definition_pb2.TaskSpec, inputs: common_pb2.Inputs, group: str
    ) -> Any:
        folder = _local(self.base) / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "inputs.pb").write_bytes(inputs.SerializeToString())
        future: asyncio.Future[state_service_pb2.ActionUpdate] = self._loop.create_future()
        if name in self._ended:
            future.set_result(self._ended[name])
        self._waiting[name] = future
        await self._watching()
        tid = spec.task_template.id
        request = queue_service_pb2.EnqueueActionRequest(
            action_id=identifier_pb2.ActionIdentifier(run=self.run, name=name),
            parent_action_name=self.parent,
            task=run_definition_pb2.TaskAction(
                id=task_definition_pb2.TaskIdentifier(
                    org=tid.org, project=tid.project, domain=tid.domain, name=tid.name, version=tid.version
                ),
                spec=spec,
            ),
            input_uri=str(folder / "inputs.pb"),
            run_output_base=self.base,
            group=group,
        )
        await self._enqueue(request, name, tid.name)
        update = await future
        return _result(name, tid.name, update)

    async def _enqueue(self, request: queue_service_pb2.EnqueueActionRequest, name: str, task: str) -> None:
        """EnqueueAction, retried while the service cannot take it (restarting, busy), as
        the SDK's controller does; ALREADY_EXISTS means it was enqueued before."""
        assert self._channel is not None
        queue = queue_service_pb2_grpc.QueueServiceStub(self._channel)
        for attempt in range(_ENQUEUE_TRIES):
            if self._enqueue_slots is None:
                self._enqueue_slots = asyncio.Semaphore(_ENQUEUE_IN_FLIGHT)
            try:
                async with self._enqueue_slots:
                    await queue.EnqueueAction(request, timeout=_ENQUEUE_SECONDS, metadata=self._metadata())
                return
            except grpc.aio.AioRpcError as e:
                if e.code() == grpc.StatusCode.ALREADY_EXISTS:
                    return
                if e.code() not in _RETRIED or attempt == _ENQUEUE_TRIES - 1:
                    self._waiting.pop(name, None)
                    raise ChildActionError(
                        f"child action {name} ({task}) could not be started: {e.details()}",
                        phase="FAILED",
                        code=e.code().name,
                    ) from e
            await asyncio.sleep(min(0.1 * 2**attempt, 2.0))

    async def _watching(self) -> None:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self._endpoint)
            self._ready = asyncio.Event()
            self._watch = self._loop.create_task(self._follow())
        assert self._ready is not None
        # As the SDK's informer: wait a while for the snapshot, then go on regardless.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), _SENTINEL_SECONDS)

    async def _follow(self) -> None:
        """One Watch of this action's children, resumed after a broken stream (a service
        restart): each resumption starts with the full snapshot, so no end is missed."""
        assert self._channel is not None and self._ready is not None
        state = state_service_pb2_grpc.StateServiceStub(self._channel)
        parent = identifier_pb2.ActionIdentifier(run=self.run, name=self.parent)
        backoff = 0.1
        while True:
            try:
                call = state.Watch(
                    state_service_pb2.WatchRequest(parent_action_id=parent), metadata=self._metadata()
                )
                async for response in call:
                    backoff = 0.1
                    if response.HasField("control_message"):
                        self._ready.set()
                    elif response.HasField("action_update"):
                        self._observe(response.action_update)
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def _observe(self, update: state_service_pb2.ActionUpdate) -> None:
        if update.phase not in _TERMINAL:
            return
        name = update.action_id.name
        self._ended[name] = update
        future = self._waiting.pop(name, None)
        if future is not None and not future.done():
            future.set_result(update)


def _result(name: str, task: str, update: state_service_pb2.ActionUpdate) -> Any:
    from ..remote.literals import from_literal

    where = _local(update.output_uri)
    if update.phase == phase_pb2.ACTION_PHASE_SUCCEEDED:
        outputs = common_pb2.Outputs.FromString((where / "outputs.pb").read_bytes())
        return from_literal(outputs.literals[0].value) if outputs.literals else None
    if update.phase == phase_pb2.ACTION_PHASE_FAILED:
        pickled = where / ERROR_PICKLE
        if pickled.exists():
            try:
                exc = cloudpickle.loads(pickled.read_bytes())
            except Exception:  # a class the parent cannot load: fall back to the message
                exc = None
            if isinstance(exc, BaseException):
                exc.add_note(f"raised in child action {name} ({task})")
                raise exc
    phase = phase_pb2.ActionPhase.Name(update.phase).removeprefix("ACTION_PHASE_")
    error = update.error
    detail = f": {error.code}: {error.message}" if update.HasField("error") else ""
    raise ChildActionError(
        f"child action {name} ({task}) ended {phase}{detail}", phase=phase, code=error.code
    )
