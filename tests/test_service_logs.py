"""TailLogs over real loopback gRPC: complete, ordered, batched, following a running task."""

from __future__ import annotations

import grpc
import pytest
from conftest import ServiceClient, python_task
from flyteidl2.common import phase_pb2
from flyteidl2.logs.dataplane import payload_pb2
from flyteidl2.workflow import run_logs_service_pb2 as rl
from flyteidl2.workflow import run_service_pb2 as rs

LINES = 100_000


def test_hundred_thousand_lines_arrive_complete_and_in_order(client: ServiceClient) -> None:
    code = f"import sys\nw = sys.stdout.write\nfor i in range({LINES}): w(f'line {{i}}\\n')"
    run = client.create(python_task(code))
    # Tail at once, while the task is still starting or running.
    stream = client.logs.TailLogs(rl.TailLogsRequest(action_id=run.action.id, attempt=1), timeout=60)
    messages: list[str] = []
    responses = 0
    last_ts = 0
    for response in stream:
        responses += 1
        assert response.ByteSize() < 4 * 1024 * 1024
        for logs in response.logs:
            for line in logs.lines:
                if line.originator == payload_pb2.USER:
                    messages.append(line.message)
                ts = line.timestamp.ToNanoseconds()
                assert ts >= last_ts
                last_ts = ts
    assert messages == [f"line {i}\n" for i in range(LINES)]
    assert responses < LINES / 100  # many lines per response
    details = client.wait(run.action.id)
    assert details.status.phase == phase_pb2.ACTION_PHASE_SUCCEEDED
    assert details.attempts[0].logs_available


def test_logs_stream_while_the_task_runs(client: ServiceClient) -> None:
    code = "import time\nprint('first', flush=True)\ntime.sleep(60)"
    run = client.create(python_task(code))
    stream = client.logs.TailLogs(rl.TailLogsRequest(action_id=run.action.id), timeout=30)
    for response in stream:
        if any(line.message == "first\n" for line in response.logs[0].lines):
            break
    else:
        pytest.fail("the stream ended before the task printed")
    # The task still runs: the line came while it ran. Abort it; the stream then ends.
    client.runs.AbortRun(rs.AbortRunRequest(run_id=run.action.id.run, reason="done"))
    rest = [line.message for response in stream for line in response.logs[0].lines]
    assert "aborted: done\n" in rest


def test_long_lines_are_split_and_attempts_checked(client: ServiceClient) -> None:
    code = "import sys; sys.stdout.write('x' * (600 * 1024) + '\\n')"
    run = client.create(python_task(code))
    client.wait(run.action.id)
    user = [line.message for line in client.log_lines(run.action.id) if line.originator == payload_pb2.USER]
    assert "".join(m.rstrip("\n") for m in user) == "x" * (600 * 1024)
    assert len(user) >= 3 and all(len(m) <= 256 * 1024 + 1 for m in user)
    with pytest.raises(grpc.RpcError) as err:
        client.log_lines(run.action.id, attempt=2)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
