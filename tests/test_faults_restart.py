"""A service killed with SIGKILL and restarted: live tasks are adopted, their logs go on with no
line lost or repeated, finished tasks keep their result, and clients ride it out."""

from __future__ import annotations

import os
import signal
import threading
import time

import grpc
import psutil
import pytest
from conftest import FixedPortService, LocalService, ServiceClient, python_task
from flyteidl2.common import phase_pb2
from flyteidl2.logs.dataplane import payload_pb2
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_service_pb2 as rs

import flyte_run_widget as frw
from flyte_run_widget import errors
from flyte_run_widget.client import loop as _loop
from flyte_run_widget.client import streams
from flyte_run_widget.client.rpc import get_client
from flyte_run_widget.client.streams import follow_logs
from flyte_run_widget.notebook.widget import RunWidget

P = phase_pb2

# Prints its pid, then `n` numbered lines `delay` seconds apart, then exits with `code`.
COUNTER = (
    "import os, sys, time\n"
    "n, delay, code = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])\n"
    "print('pid', os.getpid(), flush=True)\n"
    "for i in range(n):\n"
    "    print('line', i, flush=True)\n"
    "    time.sleep(delay)\n"
    "sys.exit(code)\n"
)


def counter(n: int, delay: float, code: int = 0) -> object:
    return python_task(COUNTER, str(n), str(delay), str(code))


def _user_lines(client: ServiceClient, action_id: object) -> list[str]:
    lines = client.log_lines(action_id)  # type: ignore[arg-type]
    return [line.message.rstrip("\n") for line in lines if line.originator == payload_pb2.USER]


def _lines_now(client: ServiceClient, action_id: object) -> list[str]:
    """The USER lines stored so far (TailLogs follows a live run: stop it after a moment)."""
    from flyteidl2.workflow import run_logs_service_pb2 as rl

    out: list[str] = []
    try:
        for response in client.logs.TailLogs(rl.TailLogsRequest(action_id=action_id), timeout=0.5):
            for logs in response.logs:
                out += [ln.message.rstrip("\n") for ln in logs.lines if ln.originator == payload_pb2.USER]
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    return out


def _wait_for_line(client: ServiceClient, action_id: object, prefix: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = rs.GetActionDetailsRequest(action_id=action_id)
        if client.runs.GetActionDetails(request).details.status.phase == P.ACTION_PHASE_RUNNING:
            from flyteidl2.workflow import run_logs_service_pb2 as rl

            for response in client.logs.TailLogs(rl.TailLogsRequest(action_id=action_id), timeout=timeout):
                for line in response.logs[0].lines:
                    if line.message.startswith(prefix):
                        return line.message
        time.sleep(0.05)
    raise AssertionError(f"no line starting with {prefix!r}")


def test_live_task_is_adopted_and_its_log_goes_on(service: LocalService) -> None:
    client = ServiceClient(service.endpoint)
    # Long enough that the task still prints when the service is back (a loaded machine starts
    # the service in seconds).
    n = 300
    run = client.create(counter(n, 0.05))
    pid = int(_wait_for_line(client, run.action.id, "pid ").split()[1])
    _wait_for_line(client, run.action.id, "line 3")
    before = client.runs.GetActionDetails(rs.GetActionDetailsRequest(action_id=run.action.id)).details
    lines_before = _lines_now(client, run.action.id)
    assert 4 <= len(lines_before) < n + 1
    client.close()
    service.kill()
    time.sleep(0.5)  # the task keeps printing while no service runs
    assert psutil.pid_exists(pid)
    service.start()
    client = ServiceClient(service.endpoint)
    details = client.wait(run.action.id)
    assert details.status.phase == P.ACTION_PHASE_SUCCEEDED, details.error_info
    phases = [t.phase for t in details.attempts[0].phase_transitions]
    assert phases == [P.ACTION_PHASE_QUEUED, P.ACTION_PHASE_INITIALIZING, P.ACTION_PHASE_RUNNING, 5]
    # Every transition from before the kill is kept as it was.
    kept = before.attempts[0].phase_transitions
    for old, new in zip(kept, details.attempts[0].phase_transitions, strict=False):
        assert old.phase == new.phase and old.start_time == new.start_time
    user = _user_lines(client, run.action.id)
    assert user[: len(lines_before)] == lines_before
    assert user == [f"pid {pid}"] + [f"line {i}" for i in range(n)]
    system = [m.message for m in client.log_lines(run.action.id) if m.originator == payload_pb2.SYSTEM]
    assert any("followed again" in m for m in system), system
    assert system[-1].startswith("exited with code 0")
    client.close()


def test_finished_runs_are_kept_exactly_across_a_kill(service: LocalService) -> None:
    client = ServiceClient(service.endpoint)
    runs = [client.create(counter(5, 0.01)), client.create(counter(5, 0.01, code=2))]
    aborted = client.create(counter(1000, 0.05))
    _wait_for_line(client, aborted.action.id, "line 1")
    client.runs.AbortRun(rs.AbortRunRequest(run_id=aborted.action.id.run, reason="enough"), timeout=20)
    runs.append(aborted)
    before = {}
    for run in runs:
        details = client.wait(run.action.id)
        before[run.action.id.run.name] = (details.SerializeToString(), client.log_lines(run.action.id))
    phases = [rd.ActionDetails.FromString(b[0]).status.phase for b in before.values()]
    assert phases == [P.ACTION_PHASE_SUCCEEDED, P.ACTION_PHASE_FAILED, P.ACTION_PHASE_ABORTED]
    client.close()
    service.kill()
    service.start()
    client = ServiceClient(service.endpoint)
    for run in runs:
        request = rs.GetActionDetailsRequest(action_id=run.action.id)
        details = client.runs.GetActionDetails(request).details
        kept, lines = before[run.action.id.run.name]
        assert details.SerializeToString(deterministic=True) == rd.ActionDetails.FromString(
            kept
        ).SerializeToString(deterministic=True), "every field and phase transition as it was"
        assert client.log_lines(run.action.id) == lines
    client.close()


def test_task_that_ended_while_the_service_was_down_keeps_its_result(service: LocalService) -> None:
    client = ServiceClient(service.endpoint)
    run = client.create(counter(10, 0.05, code=3))
    _wait_for_line(client, run.action.id, "line 1")
    client.close()
    service.kill()
    time.sleep(1.5)  # the task ends (exit code 3) while no service runs
    service.start()
    client = ServiceClient(service.endpoint)
    details = client.wait(run.action.id)
    assert details.status.phase == P.ACTION_PHASE_FAILED
    assert details.error_info.code == "ExitCode3" and details.error_info.kind == rd.ErrorInfo.KIND_USER
    assert _user_lines(client, run.action.id)[1:] == [f"line {i}" for i in range(10)]
    client.close()


def test_adopted_task_can_be_aborted_and_keeps_its_timeout(service: LocalService) -> None:
    client = ServiceClient(service.endpoint)
    long_run = client.create(counter(1000, 0.05))
    timed = client.create(python_task(COUNTER, "1000", "0.05", "0", timeout=2.5))
    pid = int(_wait_for_line(client, long_run.action.id, "pid ").split()[1])
    _wait_for_line(client, timed.action.id, "line 1")
    client.close()
    service.kill()
    service.start()
    client = ServiceClient(service.endpoint)
    client.runs.AbortRun(rs.AbortRunRequest(run_id=long_run.action.id.run, reason="stop it"), timeout=20)
    details = client.wait(long_run.action.id)
    assert details.status.phase == P.ACTION_PHASE_ABORTED
    assert details.abort_info.reason == "stop it"
    assert not _alive(pid)
    start = time.monotonic()
    details = client.wait(timed.action.id)
    assert details.status.phase == P.ACTION_PHASE_TIMED_OUT
    assert time.monotonic() - start < 6
    client.close()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_clients_ride_out_a_kill_and_restart(fixed_service: FixedPortService) -> None:
    frw.init(fixed_service.endpoint, project="proj", domain="development")
    client = ServiceClient(fixed_service.endpoint)
    n = 60
    run = client.create(counter(n, 0.05))
    client.close()
    r = frw.Run.get(run.action.id.run.name)
    states: list[str] = []
    seen: list[str] = []

    async def collect() -> None:
        def on_connection(state: str, why: str) -> None:
            states.append(state)

        async for batch in follow_logs(get_client(), r.action_id, 1, on_connection=on_connection):
            seen.extend(line.message.rstrip("\n") for line in batch if line.originator == payload_pb2.USER)

    logs = _loop.submit(collect())
    waited: list[BaseException | None] = []

    def wait() -> None:
        try:
            r.wait(quiet=True)
            waited.append(None)
        except BaseException as exc:
            waited.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    deadline = time.monotonic() + 20
    while len(seen) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(seen) >= 10
    fixed_service.kill()
    time.sleep(0.3)
    fixed_service.start()
    logs.result(timeout=60)
    waiter.join(60)
    assert waited == [None]
    assert r.phase == "succeeded"
    assert "reconnecting" in states and states[-1] == "connected"
    expected = [f"line {i}" for i in range(n)]
    assert seen[1:] == expected  # none missing, none repeated, in order


def test_widget_outlasts_an_outage_that_makes_wait_give_up(
    fixed_service: FixedPortService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run.wait() gives up after MAX_FAILURES failed reconnects (an error the user sees); a
    shown widget keeps reconnecting however long the service is away, then converges."""
    monkeypatch.setattr(streams, "BACKOFF_START", 0.05)
    monkeypatch.setattr(streams, "BACKOFF_MAX", 0.1)
    frw.init(fixed_service.endpoint, project="proj", domain="development")
    client = ServiceClient(fixed_service.endpoint)
    n = 40
    run = client.create(counter(n, 0.05))
    client.close()
    r = frw.Run.get(run.action.id.run.name)
    w = RunWidget(r)
    try:
        deadline = time.monotonic() + 20
        while not w._logs.get(1) and time.monotonic() < deadline:
            time.sleep(0.05)
        fixed_service.kill()
        with pytest.raises(errors.ServiceUnavailableError):
            r.wait(quiet=True)  # gives up after MAX_FAILURES reconnects, 0.05-0.1 s apart
        assert w.connection["state"] == "reconnecting"
        fixed_service.start()
        deadline = time.monotonic() + 60
        while (
            w.phase != "succeeded" or w.connection["state"] != "connected"
        ) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert w.phase == "succeeded" and w.connection["state"] == "connected"
        deadline = time.monotonic() + 20
        while not w._logs[1].done and time.monotonic() < deadline:
            time.sleep(0.05)
        assert w._logs[1].done
    finally:
        w.close()


def test_leftover_group_of_a_dead_relay_is_killed(service: LocalService) -> None:
    """The relay died with the service (killed from outside) but a child of the task lives on:
    the run ends FAILED (service restarted) and the child is stopped."""
    code = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print('child', child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    client = ServiceClient(service.endpoint)
    run = client.create(python_task(code))
    child = int(_wait_for_line(client, run.action.id, "child ").split()[1])
    client.close()
    relay = os.getpgid(child)
    service.kill()
    os.kill(relay, signal.SIGKILL)  # the relay only; the task and its child live on
    psutil.Process(relay).wait(5) if psutil.pid_exists(relay) else None
    service.start()
    client = ServiceClient(service.endpoint)
    details = client.runs.GetActionDetails(rs.GetActionDetailsRequest(action_id=run.action.id)).details
    assert details.status.phase == P.ACTION_PHASE_FAILED
    assert details.error_info.code == "ServiceRestarted"
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    client.close()


def test_timeout_stop_interrupted_by_a_kill_still_ends_timed_out(service: LocalService) -> None:
    """Regression (found by bench/chaos.py): the service sent SIGTERM at the deadline and was
    killed during the grace period; the task then died of that SIGTERM. The adopting service
    ended the run FAILED (SignalSIGTERM) instead of TIMED_OUT."""
    code = (
        "import os, signal, sys, time\n"
        "def slow_exit(*_):\n"
        "    print('got term', flush=True)\n"
        "    time.sleep(0.5)\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "signal.signal(signal.SIGTERM, slow_exit)\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    client = ServiceClient(service.endpoint)
    run = client.create(python_task(code, timeout=1.0))
    _wait_for_line(client, run.action.id, "got term")  # the deadline passed, SIGTERM sent
    client.close()
    service.kill()
    time.sleep(1.0)  # the task dies of the SIGTERM while no service runs
    service.start()
    client = ServiceClient(service.endpoint)
    details = client.wait(run.action.id)
    assert details.status.phase == P.ACTION_PHASE_TIMED_OUT, details.error_info
    client.close()
