"""The local Run service over real loopback gRPC: a run's life from CreateRun to its end."""

from __future__ import annotations

import os
import re
import time

import grpc
import psutil
import pytest
from conftest import LocalService, ServiceClient, container_task, python_task
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.common import phase_pb2
from flyteidl2.core import literals_pb2
from flyteidl2.logs.dataplane import payload_pb2
from flyteidl2.task import common_pb2, task_definition_pb2
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_logs_service_pb2 as rl
from flyteidl2.workflow import run_service_pb2 as rs

P = phase_pb2
USER, SYSTEM = rd.ErrorInfo.KIND_USER, rd.ErrorInfo.KIND_SYSTEM

# Reads the integer input x from inputs.pb and writes x + 1 as output "y" to outputs.pb.
ADD_ONE = """
import sys
from flyteidl2.task import common_pb2, task_definition_pb2
from flyteidl2.core import literals_pb2
inputs = common_pb2.Inputs.FromString(open(sys.argv[1], "rb").read())
x = inputs.literals[0].value.scalar.primitive.integer
out = common_pb2.Outputs()
out.literals.add(name="y").value.scalar.primitive.integer = x + 1
open(sys.argv[2] + "/outputs.pb", "wb").write(out.SerializeToString())
print("computed", x + 1)
"""

ERROR_DOC = """
import sys
from flyteidl2.core import execution_pb2
doc = execution_pb2.ErrorDocument(error=execution_pb2.ContainerError(
    code="ValueError", message="x must be positive", origin=execution_pb2.ExecutionError.USER))
open(sys.argv[1] + "/error.pb", "wb").write(doc.SerializeToString())
sys.exit(1)
"""


def int_inputs(**values: int) -> common_pb2.Inputs:
    inputs = common_pb2.Inputs()
    for name, value in values.items():
        literal = literals_pb2.Literal(
            scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=value))
        )
        inputs.literals.add(name=name, value=literal)
    return inputs


def wait_for(predicate, timeout: float = 15, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def test_success_with_outputs_and_inputs(client: ServiceClient) -> None:
    run = client.create(
        python_task(ADD_ONE, "{{.Inputs}}", "{{ .Outputs }}"), inputs=int_inputs(x=41), labels={"team": "ml"}
    )
    assert run.action.status.phase == P.ACTION_PHASE_QUEUED
    assert run.action.status.attempts == 1
    assert run.action.id.name == "a0"
    assert run.action.id.run.name.startswith("r") and len(run.action.id.run.name) == 10
    assert dict(run.labels) == {"team": "ml"}
    assert run.action.metadata.executed_by.user.id.subject
    assert run.action.metadata.task.id.name == "tests.task"

    details = client.wait(run.action.id)
    assert details.status.phase == P.ACTION_PHASE_SUCCEEDED
    assert details.status.HasField("end_time") and details.status.HasField("duration_ms")
    phases = [t.phase for t in details.attempts[0].phase_transitions]
    assert phases == [
        P.ACTION_PHASE_QUEUED,
        P.ACTION_PHASE_INITIALIZING,
        P.ACTION_PHASE_RUNNING,
        P.ACTION_PHASE_SUCCEEDED,
    ]
    assert details.attempts[0].logs_available

    data = client.runs.GetActionData(rs.GetActionDataRequest(action_id=run.action.id))
    assert data.inputs.literals[0].value.scalar.primitive.integer == 41
    assert data.outputs.literals[0].name == "y"
    assert data.outputs.literals[0].value.scalar.primitive.integer == 42

    got = client.runs.GetRunDetails(rs.GetRunDetailsRequest(run_id=run.action.id.run)).details
    assert got.action.status.phase == P.ACTION_PHASE_SUCCEEDED
    assert dict(got.run_spec.labels.values) == {"team": "ml"}

    lines = client.log_lines(run.action.id)
    user = [line.message for line in lines if line.originator == payload_pb2.USER]
    assert user == ["computed 42\n"]
    # Opened by the service's line: the task's name, the attempt, the task's pid.
    assert lines[0].originator == payload_pb2.SYSTEM
    assert re.fullmatch(r"started tests\.task, attempt 1, pid \d+\n", lines[0].message), lines[0].message


def test_templates_are_substituted(client: ServiceClient) -> None:
    code = "import sys, os; print(*sys.argv[1:], sep='|'); print(os.environ['GREETING'])"
    task = python_task(
        code,
        "{{.runName}}",
        "{{ .actionName }}",
        "{{.rawOutputDataPrefix}}",
        "{{.checkpointOutputPrefix}}",
        "{{.Unknown}}",
        env={"GREETING": "hi"},
    )
    run = client.create(task, name="my-run_1")
    assert client.wait(run.action.id).status.phase == P.ACTION_PHASE_SUCCEEDED
    user = [line.message for line in client.log_lines(run.action.id) if line.originator == payload_pb2.USER]
    run_name, action, raw, checkpoint, unknown = user[0].rstrip("\n").split("|")
    assert (run_name, action, unknown) == ("my-run_1", "a0", "{{.Unknown}}")
    assert os.path.isdir(raw) and os.path.isdir(checkpoint)
    assert user[1] == "hi\n"


def test_failure_from_error_document(client: ServiceClient) -> None:
    run = client.create(python_task(ERROR_DOC, "{{.Outputs}}"))
    details = client.wait(run.action.id)
    assert details.status.phase == P.ACTION_PHASE_FAILED
    assert details.error_info.kind == USER
    assert details.error_info.code == "ValueError"
    assert details.error_info.message == "x must be positive"
    assert details.attempts[0].error_info.code == "ValueError"


def test_failure_from_exit_code_has_stderr_tail(client: ServiceClient) -> None:
    code = (
        "import sys\n"
        "for i in range(50): print('noise', i, file=sys.stderr)\n"
        "print('the real cause', file=sys.stderr)\n"
        "sys.exit(3)"
    )
    details = client.wait(client.create(python_task(code)).action.id)
    assert details.status.phase == P.ACTION_PHASE_FAILED
    assert details.error_info.kind == USER
    assert details.error_info.code == "ExitCode3"
    assert "exited with code 3" in details.error_info.message
    assert "the real cause" in details.error_info.message
    assert "noise 49" in details.error_info.message and "noise 10\n" not in details.error_info.message


def test_garbage_outputs_fail_with_system_error(client: ServiceClient) -> None:
    code = "import sys; open(sys.argv[1] + '/outputs.pb', 'wb').write(b'\\xff\\xfe this is not protobuf')"
    details = client.wait(client.create(python_task(code, "{{.Outputs}}")).action.id)
    assert details.status.phase == P.ACTION_PHASE_FAILED
    assert details.error_info.kind == SYSTEM
    assert "outputs.pb could not be parsed" in details.error_info.message


def test_missing_executable_fails_clearly(client: ServiceClient) -> None:
    details = client.wait(client.create(container_task(["no-such-program-xyz", "arg"])).action.id)
    assert details.status.phase == P.ACTION_PHASE_FAILED
    assert "no-such-program-xyz" in details.error_info.message
    assert details.error_info.code == "CommandNotFound"


def test_invalid_utf8_and_unterminated_last_line(client: ServiceClient) -> None:
    code = "import sys; sys.stdout.buffer.write(b'ok\\n\\xff\\xfebad\\nno newline at end')"
    run = client.create(python_task(code))
    assert client.wait(run.action.id).status.phase == P.ACTION_PHASE_SUCCEEDED
    user = [line.message for line in client.log_lines(run.action.id) if line.originator == payload_pb2.USER]
    assert user == ["ok\n", "\ufffd\ufffdbad\n", "no newline at end\n"]


FORKING = """
import os, signal, subprocess, sys, time
if sys.argv[1] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print("pids", os.getpid(), child.pid, flush=True)
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("mode", ["plain", "ignore-term"])
def test_abort_stops_the_task_and_its_children(client: ServiceClient, mode: str) -> None:
    run = client.create(python_task(FORKING, mode))

    stream = client.logs.TailLogs(rl.TailLogsRequest(action_id=run.action.id), timeout=30)
    found: list[int] = []
    for response in stream:
        for line in response.logs[0].lines:
            if line.message.startswith("pids "):
                found = [int(p) for p in line.message.split()[1:]]
        if found:
            break
    stream.cancel()
    assert found and all(not _gone(p) for p in found)

    started = time.monotonic()
    client.runs.AbortRun(rs.AbortRunRequest(run_id=run.action.id.run, reason="changed my mind"))
    details = client.runs.GetActionDetails(rs.GetActionDetailsRequest(action_id=run.action.id)).details
    assert details.status.phase == P.ACTION_PHASE_ABORTED
    assert details.abort_info.reason == "changed my mind"
    assert details.status.HasField("end_time")
    if mode == "ignore-term":
        assert time.monotonic() - started >= 1.5  # the fixture's grace period is 2 s
    wait_for(lambda: all(_gone(p) for p in found), timeout=30)
    system = [
        line.message for line in client.log_lines(run.action.id) if line.originator == payload_pb2.SYSTEM
    ]
    assert "aborted: changed my mind\n" in system


def test_abort_of_finished_run_is_failed_precondition(client: ServiceClient) -> None:
    run = client.create(python_task("pass"))
    client.wait(run.action.id)
    with pytest.raises(grpc.RpcError) as err:
        client.runs.AbortRun(rs.AbortRunRequest(run_id=run.action.id.run))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"run {run.action.id.run.name} already finished (succeeded)" in (err.value.details() or "")


def test_abort_action(client: ServiceClient) -> None:
    run = client.create(python_task("import time; time.sleep(60)"))
    client.runs.AbortAction(rs.AbortActionRequest(action_id=run.action.id, reason="stop"))
    details = client.wait(run.action.id)
    assert details.status.phase == P.ACTION_PHASE_ABORTED
    assert details.abort_info.reason == "stop"


def test_timeout(client: ServiceClient) -> None:
    run = client.create(python_task("import time; time.sleep(60)", timeout=0.5))
    details = client.wait(run.action.id)
    assert details.status.phase == P.ACTION_PHASE_TIMED_OUT
    assert "timeout" in details.error_info.message
    assert len(details.attempts) == 1


def test_retries_create_attempt_two(client: ServiceClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "first-attempt-done"
    code = (
        "import os, sys\n"
        f"m = {str(marker)!r}\n"
        "if not os.path.exists(m):\n"
        "    open(m, 'w').close(); print('failing once', file=sys.stderr); sys.exit(1)\n"
        "print('second time lucky')\n"
    )
    run = client.create(python_task(code, retries=2))
    seen = []
    for response in client.runs.WatchActionDetails(
        rs.WatchActionDetailsRequest(action_id=run.action.id), timeout=30
    ):
        seen.append(response.details.status.phase)
    details = response.details
    assert details.status.phase == P.ACTION_PHASE_SUCCEEDED
    assert details.status.attempts == 2 and len(details.attempts) == 2
    assert details.attempts[0].phase == P.ACTION_PHASE_FAILED
    assert details.attempts[0].error_info.code == "ExitCode1"
    assert details.attempts[1].phase == P.ACTION_PHASE_SUCCEEDED
    assert not any(p in (P.ACTION_PHASE_FAILED,) for p in seen), (
        "a watcher must never see a final phase early"
    )
    assert client.log_lines(run.action.id, attempt=2)[1].message == "second time lucky\n"
    assert any("failing once" in line.message for line in client.log_lines(run.action.id, attempt=1))


def test_retries_run_out(client: ServiceClient) -> None:
    details = client.wait(client.create(python_task("raise SystemExit(2)", retries=1)).action.id)
    assert details.status.phase == P.ACTION_PHASE_FAILED
    assert [a.attempt for a in details.attempts] == [1, 2]


def test_watch_sends_current_state_and_ends_on_terminal(client: ServiceClient) -> None:
    run = client.create(python_task("import time; time.sleep(0.5)"))
    responses = list(
        client.runs.WatchActionDetails(rs.WatchActionDetailsRequest(action_id=run.action.id), timeout=30)
    )
    phases = [r.details.status.phase for r in responses]
    assert phases[-1] == P.ACTION_PHASE_SUCCEEDED
    assert P.ACTION_PHASE_RUNNING in phases
    assert phases == sorted(phases)
    # A watcher of a finished run gets the final state once and the stream ends.
    again = list(client.runs.WatchRunDetails(rs.WatchRunDetailsRequest(run_id=run.action.id.run), timeout=10))
    assert len(again) == 1 and again[0].details.action.status.phase == P.ACTION_PHASE_SUCCEEDED
    actions = list(client.runs.WatchActions(rs.WatchActionsRequest(run_id=run.action.id.run), timeout=10))
    assert actions[-1].enriched_actions[0].action.status.phase == P.ACTION_PHASE_SUCCEEDED
    listed = client.runs.ListActions(rs.ListActionsRequest(run_id=run.action.id.run))
    assert [a.id.name for a in listed.actions] == ["a0"]


def test_run_names(client: ServiceClient) -> None:
    task = python_task("pass")
    client.create(task, name="taken")
    with pytest.raises(grpc.RpcError) as err:
        client.create(task, name="taken")
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    for bad in ["", "UPPER", "../escape", "a/b", "x" * 64, "dot.dot", "sp ace"]:
        with pytest.raises(grpc.RpcError) as err:
            client.create(task, name=bad)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
    client.create(task, name="x" * 63)


def test_create_run_needs_a_container(client: ServiceClient) -> None:
    no_container = python_task("pass")
    no_container.task_template.ClearField("container")
    # What this service cannot run is a precondition it names; a request without an id is invalid.
    for request, code in [
        (
            rs.CreateRunRequest(
                project_id=ids.ProjectIdentifier(name="p", domain="d"), task_spec=no_container
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
        ),
        (
            rs.CreateRunRequest(
                project_id=ids.ProjectIdentifier(name="p", domain="d"),
                task_id=task_definition_pb2.TaskIdentifier(name="t"),
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
        ),
        (rs.CreateRunRequest(task_spec=python_task("pass")), grpc.StatusCode.INVALID_ARGUMENT),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            client.runs.CreateRun(request)
        assert err.value.code() == code, err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        client.runs.CreateRun(
            rs.CreateRunRequest(project_id=ids.ProjectIdentifier(name="p"), task_spec=no_container)
        )
    assert "container" in (err.value.details() or "")


def test_unknown_run_is_not_found(client: ServiceClient) -> None:
    rid = ids.RunIdentifier(project="proj", domain="development", name="rnothere00")
    aid = ids.ActionIdentifier(run=rid, name="a0")
    calls = [
        lambda: client.runs.GetRunDetails(rs.GetRunDetailsRequest(run_id=rid)),
        lambda: list(client.runs.WatchRunDetails(rs.WatchRunDetailsRequest(run_id=rid))),
        lambda: client.runs.GetActionDetails(rs.GetActionDetailsRequest(action_id=aid)),
        lambda: list(client.runs.WatchActionDetails(rs.WatchActionDetailsRequest(action_id=aid))),
        lambda: client.runs.GetActionData(rs.GetActionDataRequest(action_id=aid)),
        lambda: client.runs.AbortRun(rs.AbortRunRequest(run_id=rid)),
        lambda: client.log_lines(aid),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert "rnothere00" in (err.value.details() or "")


def test_unimplemented_rpcs(client: ServiceClient) -> None:
    with pytest.raises(grpc.RpcError) as err:
        client.runs.GetActionDataURIs(rs.GetActionDataURIsRequest())
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(grpc.RpcError) as err:
        list(client.runs.WatchClusterEvents(rs.WatchClusterEventsRequest()))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_no_rpc_ever_answers_unknown(client: ServiceClient) -> None:
    """Empty and odd requests to every RPC get an explicit code, never UNKNOWN."""
    descriptor = rs.DESCRIPTOR.services_by_name["RunService"]
    odd_id = ids.RunIdentifier(org="127", project="../..", domain="", name="../../etc")
    for method in descriptor.methods:
        request_class = getattr(rs, method.input_type.name)
        requests = [request_class()]
        for field in ("run_id", "action_id"):
            if field in request_class.DESCRIPTOR.fields_by_name:
                value = odd_id if field == "run_id" else ids.ActionIdentifier(run=odd_id, name="../x")
                requests.append(request_class(**{field: value}))
        for request in requests:
            call = getattr(client.runs, method.name)
            try:
                result = call(request, timeout=2)
                if method.server_streaming:
                    next(iter(result), None)
            except grpc.RpcError as exc:
                assert exc.code() not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAUTHENTICATED), (
                    method.name,
                    exc.details(),
                )
                assert exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED, method.name


def test_service_stops_cleanly(service: LocalService, client: ServiceClient) -> None:
    run = client.create(python_task("import time; time.sleep(60)"))
    wait_for(
        lambda: (
            client.runs.GetActionDetails(
                rs.GetActionDetailsRequest(action_id=run.action.id)
            ).details.status.phase
            == P.ACTION_PHASE_RUNNING
        )
    )
    assert (service.data_dir / "server.json").exists()
    assert service.stop() == 0
    assert not (service.data_dir / "server.json").exists()
    service.start()
    fresh = ServiceClient(service.endpoint)
    details = fresh.runs.GetActionDetails(rs.GetActionDetailsRequest(action_id=run.action.id)).details
    assert details.status.phase == P.ACTION_PHASE_ABORTED
    fresh.close()
