"""Abort races and timeouts: every abort answers cleanly, and no task process outlives its run."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import psutil
import pytest
from conftest import LocalService, ServiceClient, python_task
from flyteidl2.common import phase_pb2
from flyteidl2.logs.dataplane import payload_pb2
from flyteidl2.workflow import run_logs_service_pb2 as rl
from flyteidl2.workflow import run_service_pb2 as rs

import flyte_run_widget as frw

P = phase_pb2


def _abort(client: ServiceClient, run: object, reason: str = "stop") -> None:
    client.runs.AbortRun(rs.AbortRunRequest(run_id=run.action.id.run, reason=reason), timeout=30)  # type: ignore[attr-defined]


def _phase(client: ServiceClient, run: object) -> int:
    request = rs.GetActionDetailsRequest(action_id=run.action.id)  # type: ignore[attr-defined]
    return int(client.runs.GetActionDetails(request).details.status.phase)


def _first_line(client: ServiceClient, run: object, prefix: str) -> str:
    request = rl.TailLogsRequest(action_id=run.action.id)  # type: ignore[attr-defined]
    for response in client.logs.TailLogs(request, timeout=30):
        for line in response.logs[0].lines:
            if line.originator == payload_pb2.USER and line.message.startswith(prefix):
                return line.message
    raise AssertionError(f"no line {prefix!r}")


def _gone(pids: list[int], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return True
        time.sleep(0.05)
    return False


def _ignores_sigterm(pid: int) -> bool:
    """Whether the process ignores SIGTERM (Linux: the SigIgn mask in /proc/PID/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:"))
    return bool(int(mask, 16) & (1 << (signal.SIGTERM - 1)))


def _wait_until(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_abort_right_after_create_and_while_initializing(client: ServiceClient) -> None:
    # Right after CreateRun the action is QUEUED or INITIALIZING: the task never runs.
    for _ in range(3):
        run = client.create(python_task("print('ran'); import time; time.sleep(30)"))
        _abort(client, run, "early")
        details = client.wait(run.action.id)
        assert details.status.phase == P.ACTION_PHASE_ABORTED
        assert details.abort_info.reason == "early"
        phases = [t.phase for t in details.attempts[0].phase_transitions]
        assert phases[-1] == P.ACTION_PHASE_ABORTED and phases == sorted(phases)


def test_abort_running_and_during_the_last_second(client: ServiceClient) -> None:
    run = client.create(python_task("import time; print('up', flush=True); time.sleep(30)"))
    _first_line(client, run, "up")
    _abort(client, run)
    assert client.wait(run.action.id).status.phase == P.ACTION_PHASE_ABORTED
    # Abort near the end: either the run ends ABORTED, or it finished first and the abort is
    # refused as "already finished"; never an error of another kind, never a mixed state.
    for delay in (0.6, 0.8, 0.95, 1.0, 1.05):
        run = client.create(python_task("import time; print('up', flush=True); time.sleep(0.9)"))
        _first_line(client, run, "up")
        time.sleep(max(0.0, delay - 0.1))
        try:
            _abort(client, run, "late")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "already finished" in (exc.details() or "")
        details = client.wait(run.action.id)
        if details.status.phase == P.ACTION_PHASE_ABORTED:
            assert details.abort_info.reason == "late" and not details.HasField("error_info")
        else:
            assert details.status.phase == P.ACTION_PHASE_SUCCEEDED and not details.HasField("abort_info")


def test_abort_after_the_end_is_already_finished(client: ServiceClient) -> None:
    run = client.create(python_task("print('done')"))
    client.wait(run.action.id)
    with pytest.raises(grpc.RpcError) as info:
        _abort(client, run)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already finished" in (info.value.details() or "")


def test_run_abort_after_the_end_warns(service: LocalService) -> None:
    frw.init(service.endpoint, project="proj", domain="development")
    client = ServiceClient(service.endpoint)
    run = client.create(python_task("print('done')"))
    client.wait(run.action.id)
    client.close()
    r = frw.Run.get(run.action.id.run.name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r.abort()
    assert any("already finished" in str(w.message) for w in caught)
    assert r.phase == "succeeded"


def test_two_aborts_at_once(tmp_path: Path) -> None:
    # The second abort arrives while the first is under way: the task got SIGTERM and holds on
    # until the gate opens (with a grace long enough that no SIGKILL ends it first).
    service = LocalService(tmp_path / "data", abort_grace=120)
    client = ServiceClient(service.endpoint)
    gate = tmp_path / "go"
    code = (
        "import os, signal, sys, time\n"
        "def on_term(*_):\n"
        "    print('got term', flush=True)\n"
        f"    while not os.path.exists({str(gate)!r}):\n"
        "        time.sleep(0.01)\n"
        "    sys.exit(143)\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
        "print('up', flush=True)\n"
        "time.sleep(120)\n"
    )
    try:
        run = client.create(python_task(code))
        _first_line(client, run, "up")
        errors: list[BaseException] = []

        def abort(reason: str) -> None:
            try:
                _abort(client, run, reason)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=abort, args=(f"reason {i}",)) for i in range(2)]
        threads[0].start()
        _first_line(client, run, "got term")  # the first abort is under way
        threads[1].start()
        requested = f"abort of run {run.action.id.run.name} requested"
        _wait_until(lambda: service.log_path.read_text().count(requested) == 2, "the second abort")
        assert _phase(client, run) == P.ACTION_PHASE_RUNNING
        gate.touch()
        for t in threads:
            t.join(60)
        assert errors == []
        details = client.wait(run.action.id)
        assert details.status.phase == P.ACTION_PHASE_ABORTED
        assert details.abort_info.reason == "reason 0", "the first abort's reason is kept"
        phases = [t.phase for t in details.attempts[0].phase_transitions]
        assert phases.count(P.ACTION_PHASE_ABORTED) == 1
    finally:
        client.close()
        service.stop()


def test_task_ignoring_sigterm_is_killed_after_the_grace(client: ServiceClient) -> None:
    code = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('pid', os.getpid(), flush=True)\n"
        "time.sleep(60)\n"
    )
    run = client.create(python_task(code))
    pid = int(_first_line(client, run, "pid ").split()[1])
    start = time.monotonic()
    _abort(client, run)
    took = time.monotonic() - start
    details = client.wait(run.action.id)
    assert details.status.phase == P.ACTION_PHASE_ABORTED
    assert took >= 2.0  # SIGKILL only once the fixture's 2 s grace has passed
    assert _gone([pid])
    # The killed relay may have been mid-record: the log still reads to its end.
    lines = client.log_lines(run.action.id)
    assert lines[-1].message.startswith("aborted: stop")


def _forking(extra: str = "") -> str:
    return (
        "import os, subprocess, sys, time\n"
        "kids = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']) for _ in range(2)]\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "print('pids', ' '.join(str(p) for p in [os.getpid(), pid] + [k.pid for k in kids]), flush=True)\n"
        + extra
    )


def test_forked_children_are_gone_after_abort_and_after_the_end(client: ServiceClient) -> None:
    run = client.create(python_task(_forking("time.sleep(60)\n")))
    pids = [int(p) for p in _first_line(client, run, "pids ").split()[1:]]
    _abort(client, run)
    assert client.wait(run.action.id).status.phase == P.ACTION_PHASE_ABORTED
    assert _gone(pids)
    # The main process exits at once, leaving its children: they end with the attempt.
    run = client.create(python_task(_forking()))
    pids = [int(p) for p in _first_line(client, run, "pids ").split()[1:]]
    assert client.wait(run.action.id).status.phase == P.ACTION_PHASE_SUCCEEDED
    assert _gone(pids)


def _escaping(extra: str = "") -> str:
    """A task whose children leave its process group: one with setsid, one daemonised by a
    double fork (its parent exits, so it is orphaned)."""
    return (
        "import os, subprocess, sys, time\n"
        "sleeper = [sys.executable, '-c', 'import time; time.sleep(60)']\n"
        "own = subprocess.Popen(sleeper, start_new_session=True)\n"
        "r, w = os.pipe()\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.write(w, str(os.getpid()).encode()); os.close(w)\n"
        "        time.sleep(60)\n"
        "    os._exit(0)\n"
        "os.close(w)\n"
        "daemon = int(os.read(r, 32))\n"
        "print('pids', os.getpgrp(), own.pid, daemon, flush=True)\n" + extra
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child subreaper is Linux only")
def test_children_that_left_the_group_are_gone_after_abort_and_after_the_end(client: ServiceClient) -> None:
    run = client.create(python_task(_escaping("time.sleep(60)\n")))
    group, *pids = (int(p) for p in _first_line(client, run, "pids ").split()[1:])
    assert all(os.getpgid(p) != group for p in pids)  # killpg of the task's group misses them
    _abort(client, run)
    assert client.wait(run.action.id).status.phase == P.ACTION_PHASE_ABORTED
    assert _gone(pids)
    run = client.create(python_task(_escaping()))
    group, *pids = (int(p) for p in _first_line(client, run, "pids ").split()[1:])
    assert client.wait(run.action.id).status.phase == P.ACTION_PHASE_SUCCEEDED
    assert _gone(pids)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child subreaper is Linux only")
def test_children_that_left_the_group_and_ignore_sigterm_are_gone_when_the_grace_runs_out(
    client: ServiceClient,
) -> None:
    # Everyone ignores SIGTERM, so the grace runs out and the group gets SIGKILL, which ends the
    # relay as well: the escaped processes must be killed before that, or nobody finds them.
    ignore = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    code = _escaping("time.sleep(60)\n").replace(
        "'import time; time.sleep(60)'", f"'{ignore}import time; time.sleep(60)'"
    )
    code = code.replace(
        "    os.setsid()\n", "    os.setsid()\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    )
    code = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n" + code
    for kind in ("abort", "timeout"):
        run = client.create(python_task(code, **({"timeout": 2.0} if kind == "timeout" else {})))
        group, *pids = (int(p) for p in _first_line(client, run, "pids ").split()[1:])
        assert all(os.getpgid(p) != group for p in pids)
        # The escaped children, that is (the group's leader is the relay, which does not).
        _wait_until(lambda c=pids: all(map(_ignores_sigterm, c)), "the children to ignore SIGTERM")
        if kind == "abort":
            _abort(client, run)
        details = client.wait(run.action.id, timeout=30)
        expected = P.ACTION_PHASE_ABORTED if kind == "abort" else P.ACTION_PHASE_TIMED_OUT
        assert details.status.phase == expected, kind
        assert _gone(pids), kind


def test_timeout_ends_timed_out_with_processes_gone(client: ServiceClient) -> None:
    code = _forking("import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n")
    run = client.create(python_task(code, timeout=1.0))
    pids = [int(p) for p in _first_line(client, run, "pids ").split()[1:]]
    details = client.wait(run.action.id, timeout=30)
    assert details.status.phase == P.ACTION_PHASE_TIMED_OUT
    assert details.error_info.code == "Timeout"
    assert _gone(pids)


def test_abort_of_a_running_run_with_retries_does_not_retry(client: ServiceClient) -> None:
    run = client.create(python_task("import sys, time; print('up', flush=True); time.sleep(30)", retries=2))
    _first_line(client, run, "up")
    _abort(client, run)
    details = client.wait(run.action.id)
    assert details.status.phase == P.ACTION_PHASE_ABORTED and len(details.attempts) == 1


# Prints 'up', then runs until the file argv[1] exists.
GATED = (
    "import os, sys, time\n"
    "print('up', flush=True)\n"
    "while not os.path.exists(sys.argv[1]):\n"
    "    time.sleep(0.01)\n"
)
# Creates the file argv[1]: proof that the task started.
MARKS = "import sys; open(sys.argv[1], 'w').close(); print('started', flush=True)"


@pytest.fixture
def one_at_a_time(tmp_path: Path) -> Iterator[ServiceClient]:
    """A service that runs one task at a time (--max-running 1): later runs wait QUEUED."""
    svc = LocalService(tmp_path / "data", args=["--max-running", "1"])
    c = ServiceClient(svc.endpoint)
    try:
        yield c
    finally:
        c.close()
        svc.stop()


def test_runs_beyond_the_limit_wait_queued_and_start_when_a_slot_frees(
    one_at_a_time: ServiceClient, tmp_path: Path
) -> None:
    client, gate, marker = one_at_a_time, tmp_path / "go", tmp_path / "started"
    blocker = client.create(python_task(GATED, str(gate)))
    _first_line(client, blocker, "up")  # running, in the only slot, until the gate opens
    waiting = client.create(python_task(MARKS, str(marker)))
    assert _phase(client, waiting) == P.ACTION_PHASE_QUEUED
    gate.touch()
    ended = client.wait(blocker.action.id)
    assert ended.status.phase == P.ACTION_PHASE_SUCCEEDED
    details = client.wait(waiting.action.id)
    assert details.status.phase == P.ACTION_PHASE_SUCCEEDED and marker.exists()
    started = [t for t in details.attempts[0].phase_transitions if t.phase == P.ACTION_PHASE_INITIALIZING]
    assert started[0].start_time.ToNanoseconds() >= ended.status.end_time.ToNanoseconds()


def test_abort_of_a_queued_run_never_starts_it(one_at_a_time: ServiceClient, tmp_path: Path) -> None:
    client, gate, marker = one_at_a_time, tmp_path / "go", tmp_path / "started"
    blocker = client.create(python_task(GATED, str(gate)))
    _first_line(client, blocker, "up")
    queued = client.create(python_task(MARKS, str(marker), retries=2))
    assert _phase(client, queued) == P.ACTION_PHASE_QUEUED  # it cannot start while the blocker runs
    _abort(client, queued, "not needed")
    details = client.wait(queued.action.id)
    assert details.status.phase == P.ACTION_PHASE_ABORTED and details.abort_info.reason == "not needed"
    assert len(details.attempts) == 1, "an aborted run is not retried"
    phases = [t.phase for t in details.attempts[0].phase_transitions]
    assert phases == [P.ACTION_PHASE_QUEUED, P.ACTION_PHASE_ABORTED]
    lines = [line.message.rstrip("\n") for line in client.log_lines(queued.action.id)]
    assert lines == ["aborted: not needed"], "no 'started' line: no process was started"
    # The slot it waited for goes to the next run, and the aborted one never starts later.
    gate.touch()
    assert client.wait(blocker.action.id).status.phase == P.ACTION_PHASE_SUCCEEDED
    after = client.create(python_task("print('after')"))
    assert client.wait(after.action.id).status.phase == P.ACTION_PHASE_SUCCEEDED
    assert not marker.exists(), "the aborted run's task started"
