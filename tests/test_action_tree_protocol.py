"""QueueService and StateService as the flyte SDK's task controller calls them (Connect over
HTTP/1.1, as flyte 2.12.1 does; gRPC in test_action_tree.py through this package's task side):
the codes it acts on, the Watch snapshot + sentinel + changes, output_uri and error on every
update, and the stream's end with its parent."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import grpc
import pytest
from conftest import TOKEN, LocalService, ServiceClient, python_task
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.common import phase_pb2
from flyteidl2.workflow import queue_service_pb2 as qs
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_service_pb2 as rs
from flyteidl2.workflow import run_service_pb2_grpc as rs_grpc
from flyteidl2.workflow import state_service_pb2 as ss
from flyteidl2.workflow import state_service_pb2_grpc as ss_grpc
from flyteidl2.workflow.queue_service_connect import QueueServiceClient
from flyteidl2.workflow.state_service_connect import StateServiceClient
from pyqwest import Client as HTTPClient
from pyqwest import HTTPTransport, HTTPVersion

import flyte_run_widget as frw

P = phase_pb2
GATED_ROOT = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]):\n    time.sleep(0.02)\n"


def _clients(endpoint: str) -> tuple[QueueServiceClient, StateServiceClient]:
    http = HTTPClient(HTTPTransport(http_version=HTTPVersion.HTTP1))
    url = f"http://{endpoint}"
    return QueueServiceClient(url, http_client=http), StateServiceClient(url, http_client=http)


def _enqueue(
    run: ids.RunIdentifier, name: str, base: Path, code: str = "", **fields: object
) -> qs.EnqueueActionRequest:
    spec = python_task(code or "print('child')")
    request = qs.EnqueueActionRequest(
        action_id=ids.ActionIdentifier(run=run, name=name),
        parent_action_name="a0",
        task=rd.TaskAction(spec=spec),
        input_uri=str(base / name / "inputs.pb"),
        run_output_base=str(base),
        group="g",
    )
    for key, value in fields.items():
        setattr(request, key, value)
    return request


async def _code(call: object) -> Code:
    with pytest.raises(ConnectError) as info:
        await call  # type: ignore[misc]
    return info.value.code


def test_queue_and_state_services_as_the_sdk_controller_uses_them(
    service: LocalService, tmp_path: Path
) -> None:
    gate, base = tmp_path / "open", tmp_path / "base"
    run = ServiceClient(service.endpoint).create(python_task(GATED_ROOT, str(gate))).action.id.run
    queue, state = _clients(service.endpoint)

    async def go() -> None:
        watch = state.watch(ss.WatchRequest(parent_action_id=ids.ActionIdentifier(run=run, name="a0")))
        first = await asyncio.wait_for(anext(watch), 60)  # no children yet: the sentinel alone
        assert first.control_message.sentinel
        await queue.enqueue_action(_enqueue(run, "c1", base))
        assert await _code(queue.enqueue_action(_enqueue(run, "c1", base))) == Code.ALREADY_EXISTS
        await queue.enqueue_action(_enqueue(run, "c2", base, code="import sys; sys.exit(3)"))
        ended: dict[str, ss.ActionUpdate] = {}
        async for response in watch:
            update = response.action_update
            assert update.output_uri == f"{base}/{update.action_id.name}/1"  # on every update
            if update.phase in (P.ACTION_PHASE_SUCCEEDED, P.ACTION_PHASE_FAILED):
                ended[update.action_id.name] = update
            if len(ended) == 2:
                break
        assert ended["c1"].phase == P.ACTION_PHASE_SUCCEEDED and not ended["c1"].HasField("error")
        assert ended["c2"].phase == P.ACTION_PHASE_FAILED and ended["c2"].error.code == "ExitCode3"
        # A new Watch: the snapshot of both children, then the sentinel.
        again = state.watch(ss.WatchRequest(parent_action_id=ids.ActionIdentifier(run=run, name="a0")))
        snapshot = [await anext(again) for _ in range(3)]
        assert sorted(r.action_update.action_id.name for r in snapshot[:2]) == ["c1", "c2"]
        assert snapshot[2].control_message.sentinel
        # What the controller fails a child on, or tolerates.
        other = ids.RunIdentifier(project=run.project, domain=run.domain, name="nosuchrun")
        assert await _code(queue.enqueue_action(_enqueue(other, "c3", base))) == Code.NOT_FOUND
        orphan = _enqueue(run, "c3", base, parent_action_name="nope")
        assert await _code(queue.enqueue_action(orphan)) == Code.NOT_FOUND
        assert await _code(queue.enqueue_action(_enqueue(run, "Bad Name", base))) == Code.INVALID_ARGUMENT
        remote = _enqueue(run, "c4", base, input_uri="s3://bucket/inputs.pb")
        assert await _code(queue.enqueue_action(remote)) == Code.INVALID_ARGUMENT
        trace = qs.EnqueueActionRequest(
            action_id=ids.ActionIdentifier(run=run, name="c5"), trace=rd.TraceAction()
        )
        assert await _code(queue.enqueue_action(trace)) == Code.INVALID_ARGUMENT
        done = qs.AbortQueuedActionRequest(action_id=ids.ActionIdentifier(run=run, name="c1"))
        assert await _code(queue.abort_queued_action(done)) == Code.FAILED_PRECONDITION
        missing = qs.AbortQueuedActionRequest(action_id=ids.ActionIdentifier(run=run, name="c9"))
        assert await _code(queue.abort_queued_action(missing)) == Code.NOT_FOUND
        # The parent ends: the Watch ends with it, and no child may start any more.
        gate.touch()
        async for _ in again:
            pass
        assert await _code(queue.enqueue_action(_enqueue(run, "c6", base))) == Code.ABORTED

    asyncio.run(go())


@frw.task
async def child_value(x: int) -> int:
    return x + 1


@frw.task
async def parent_with_token() -> list[str]:
    # What the task was given to call the service back, and that it works for children.
    return [os.environ.get("FLYTE_RUN_WIDGET_TASK_TOKEN", ""), str(await child_value(1))]


def test_tasks_call_back_with_a_token_good_for_child_actions_only(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    service = LocalService(tmp_path / "data", args=["--token-file", str(token_file)])
    try:
        frw.init(service.endpoint, api_key=TOKEN, project="treeproj", domain="development")
        run = frw.run(parent_with_token)
        run.wait()
        assert run.phase == "succeeded", run.details().pb2.action.error_info
        task_token, value = run.outputs()[0]
        assert value == "2" and task_token and task_token != TOKEN
        channel = grpc.insecure_channel(service.endpoint)
        auth = [("authorization", f"Bearer {task_token}")]
        runs = rs_grpc.RunServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            runs.ListRuns(rs.ListRunsRequest(), metadata=auth)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # ... but the child-action services take it.
        state = ss_grpc.StateServiceStub(channel)
        parent = ids.ActionIdentifier(run=run.action_id.run, name="a0")
        first = next(iter(state.Watch(ss.WatchRequest(parent_action_id=parent), metadata=auth, timeout=60)))
        assert first.action_update.phase == P.ACTION_PHASE_SUCCEEDED
    finally:
        service.stop()
