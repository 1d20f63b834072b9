"""A service killed with SIGKILL and restarted: live tasks are adopted, their logs go on with no
line lost or repeated, finished tasks keep their result, and clients ride it out."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from conftest import FixedPortService, LocalService, ServiceClient, python_task
from flyteidl2.common import phase_pb2
from flyteidl2.logs.dataplane import payload_pb2
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_logs_service_pb2 as rl
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


# Prints its pid, then numbered lines in steps "COUNT:GATE": before a step with a gate it waits
# until that file exists, after it writes GATE.out; exits with argv[1]. The test decides when
# each step runs, so what happens while no service runs does not depend on timing.
STEPPED = (
    "import os, sys, time\n"
    "code, i = int(sys.argv[1]), 0\n"
    "print('pid', os.getpid(), flush=True)\n"
    "for step in sys.argv[2:]:\n"
    "    count, gate = step.split(':', 1)\n"
    "    while gate and not os.path.exists(gate):\n"
    "        time.sleep(0.01)\n"
    "    for _ in range(int(count)):\n"
    "        print('line', i, flush=True)\n"
    "        i += 1\n"
    "    if gate:\n"
    "        open(gate + '.out', 'w').close()\n"
    "sys.exit(code)\n"
)


def stepped(*steps: str, code: int = 0, **kwargs: object) -> object:
    return python_task(STEPPED, str(code), *steps, **kwargs)


# What the restarted service writes in the run's log for each way it takes a run back.
FOLLOWED_AGAIN = "the service restarted while the task ran; it was followed again"
ENDED_WHILE_DOWN = "the service restarted; the task had ended while it was down"


def _system_lines(client: ServiceClient, action_id: object) -> list[str]:
    lines = client.log_lines(action_id)  # type: ignore[arg-type]
    return [line.message.rstrip("\n") for line in lines if line.originator == payload_pb2.SYSTEM]


def _user_lines(client: ServiceClient, action_id: object) -> list[str]:
    lines = client.log_lines(action_id)  # type: ignore[arg-type]
    return [line.message.rstrip("\n") for line in lines if line.originator == payload_pb2.USER]


def _lines_until(client: ServiceClient, action_id: object, prefix: str, timeout: float = 60) -> list[str]:
    """The USER lines from the first up to the first one starting with ``prefix``, following
    the live log until it comes."""
    out: list[str] = []
    stream = client.logs.TailLogs(rl.TailLogsRequest(action_id=action_id), timeout=timeout)
    try:
        for response in stream:
            for logs in response.logs:
                for line in logs.lines:
                    if line.originator == payload_pb2.USER:
                        out.append(line.message.rstrip("\n"))
                        if out[-1].startswith(prefix):
                            return out
    finally:
        stream.cancel()
    raise AssertionError(f"no line starting with {prefix!r}; the log has {out}")


def _wait_for_line(client: ServiceClient, action_id: object, prefix: str) -> str:
    return _lines_until(client, action_id, prefix)[-1]


def _wait_until(predicate: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _gone(*pids: int) -> bool:
    return not any(_alive(p) for p in pids)


def test_live_task_is_adopted_and_its_log_goes_on(service: LocalService, tmp_path: Path) -> None:
    down, back = tmp_path / "down", tmp_path / "back"
    client = ServiceClient(service.endpoint)
    run = client.create(stepped("5:", f"10:{down}", f"25:{back}"))
    lines_before = _lines_until(client, run.action.id, "line 4")
    pid = int(lines_before[0].split()[1])
    before = client.runs.GetActionDetails(rs.GetActionDetailsRequest(action_id=run.action.id)).details
    client.close()
    service.kill()
    down.touch()  # the task prints lines 5-14 while no service runs
    _wait_until(lambda: Path(f"{down}.out").exists(), "the lines printed while the service was down")
    assert _alive(pid)
    service.start()
    back.touch()  # the task can only end now, so the restarted service found it running
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
    assert user == [f"pid {pid}"] + [f"line {i}" for i in range(40)]
    system = _system_lines(client, run.action.id)
    assert sum(FOLLOWED_AGAIN in m for m in system) == 1 and not any(ENDED_WHILE_DOWN in m for m in system)
    assert system[-1].startswith("exited with code 0")
    assert f"adopted run {run.action.id.run.name}" in service.log_path.read_text()
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


def test_task_that_ended_while_the_service_was_down_keeps_its_result(
    service: LocalService, tmp_path: Path
) -> None:
    down = tmp_path / "down"
    client = ServiceClient(service.endpoint)
    run = client.create(stepped("2:", f"8:{down}", code=3))
    pid = int(_wait_for_line(client, run.action.id, "pid ").split()[1])
    relay = os.getpgid(pid)  # the relay leads the task's process group
    _wait_for_line(client, run.action.id, "line 1")
    client.close()
    service.kill()
    down.touch()  # the task ends (exit code 3) while no service runs
    _wait_until(lambda: _gone(pid, relay), "the task and its relay to end")
    service.start()
    client = ServiceClient(service.endpoint)
    details = client.wait(run.action.id)
    assert details.status.phase == P.ACTION_PHASE_FAILED
    assert details.error_info.code == "ExitCode3" and details.error_info.kind == rd.ErrorInfo.KIND_USER
    assert _user_lines(client, run.action.id)[1:] == [f"line {i}" for i in range(10)]
    # Taken back from what the relay recorded, not followed while running.
    system = _system_lines(client, run.action.id)
    assert sum(ENDED_WHILE_DOWN in m for m in system) == 1 and not any(FOLLOWED_AGAIN in m for m in system)
    assert system[-1] == "failed: " + details.error_info.message
    client.close()


def test_adopted_task_can_be_aborted_and_keeps_its_timeout(service: LocalService) -> None:
    client = ServiceClient(service.endpoint)
    long_run = client.create(counter(1000, 0.05))
    timeout = 4.0
    timed = client.create(python_task(COUNTER, "1000", "0.05", "0", timeout=timeout))
    pid = int(_wait_for_line(client, long_run.action.id, "pid ").split()[1])
    _wait_for_line(client, timed.action.id, "line 1")
    request = rs.GetActionDetailsRequest(action_id=timed.action.id)
    transitions = client.runs.GetActionDetails(request).details.attempts[0].phase_transitions
    running = [t.start_time.ToNanoseconds() / 1e9 for t in transitions if t.phase == P.ACTION_PHASE_RUNNING]
    client.close()
    service.kill()
    # The deadline passes while no service runs: a service that kept it stops the task as soon
    # as it is back; one that counted the timeout again from the restart would wait 4 s more.
    _wait_until(lambda: time.time() > running[0] + timeout, "the timed task's deadline")
    service.start()
    back = time.time()  # the runs were taken back before the service started listening
    client = ServiceClient(service.endpoint)
    client.runs.AbortRun(rs.AbortRunRequest(run_id=long_run.action.id.run, reason="stop it"), timeout=20)
    details = client.wait(long_run.action.id)
    assert details.status.phase == P.ACTION_PHASE_ABORTED
    assert details.abort_info.reason == "stop it"
    assert not _alive(pid)
    assert any(FOLLOWED_AGAIN in m for m in _system_lines(client, long_run.action.id))
    details = client.wait(timed.action.id)
    assert details.status.phase == P.ACTION_PHASE_TIMED_OUT
    assert details.status.end_time.ToNanoseconds() / 1e9 - back < timeout / 2
    assert any(FOLLOWED_AGAIN in m for m in _system_lines(client, timed.action.id))
    client.close()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_clients_ride_out_a_kill_and_restart(fixed_service: FixedPortService, tmp_path: Path) -> None:
    frw.init(fixed_service.endpoint, project="proj", domain="development")
    client = ServiceClient(fixed_service.endpoint)
    n = 60
    down = tmp_path / "down"
    run = client.create(stepped("10:", f"{n - 10}:{down}"))  # the rest once the service is down
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
    _wait_until(lambda: len(seen) >= 11, "the first ten lines")
    fixed_service.kill()
    _wait_until(lambda: "reconnecting" in states, "the client to see the service gone")
    down.touch()
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
    _wait_until(lambda: not _alive(relay), "the relay to end")
    service.start()
    client = ServiceClient(service.endpoint)
    details = client.runs.GetActionDetails(rs.GetActionDetailsRequest(action_id=run.action.id)).details
    assert details.status.phase == P.ACTION_PHASE_FAILED
    assert details.error_info.code == "ServiceRestarted"
    _wait_until(lambda: not _alive(child), "the leftover child to be stopped")
    system = _system_lines(client, run.action.id)
    assert not any(FOLLOWED_AGAIN in m or ENDED_WHILE_DOWN in m for m in system)
    assert f"adopted run {run.action.id.run.name}" not in service.log_path.read_text()
    client.close()


def test_timeout_stop_interrupted_by_a_kill_still_ends_timed_out(
    service: LocalService, tmp_path: Path
) -> None:
    """Regression (found by bench/chaos.py): the service sent SIGTERM at the deadline and was
    killed during the grace period; the task then died of that SIGTERM. The adopting service
    ended the run FAILED (SignalSIGTERM) instead of TIMED_OUT."""
    down = tmp_path / "down"
    code = (
        "import os, signal, sys, time\n"
        "def slow_exit(*_):\n"
        "    print('got term', flush=True)\n"
        f"    while not os.path.exists({str(down)!r}):\n"
        "        time.sleep(0.01)\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "signal.signal(signal.SIGTERM, slow_exit)\n"
        "print('pid', os.getpid(), flush=True)\n"
        "time.sleep(60)\n"
    )
    client = ServiceClient(service.endpoint)
    run = client.create(python_task(code, timeout=1.0))
    pid = int(_wait_for_line(client, run.action.id, "pid ").split()[1])
    relay = os.getpgid(pid)
    _wait_for_line(client, run.action.id, "got term")  # the deadline passed, SIGTERM sent
    client.close()
    service.kill()
    down.touch()  # the task dies of the SIGTERM while no service runs
    _wait_until(lambda: _gone(pid, relay), "the task and its relay to end")
    service.start()
    client = ServiceClient(service.endpoint)
    details = client.wait(run.action.id)
    assert details.status.phase == P.ACTION_PHASE_TIMED_OUT, details.error_info
    assert any(ENDED_WHILE_DOWN in m for m in _system_lines(client, run.action.id))
    client.close()
