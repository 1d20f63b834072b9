"""A restarted service keeps every run, transition and log line; a killed one is recovered."""

from __future__ import annotations

import os
import signal
import time

import psutil
from conftest import LocalService, ServiceClient, python_task
from flyteidl2.common import phase_pb2
from flyteidl2.logs.dataplane import payload_pb2
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_logs_service_pb2 as rl
from flyteidl2.workflow import run_service_pb2 as rs

P = phase_pb2


def test_restart_keeps_runs_and_logs(service: LocalService) -> None:
    client = ServiceClient(service.endpoint)
    run = client.create(python_task("for i in range(1000): print('kept', i)"), name="keep-me")
    before = client.wait(run.action.id)
    lines_before = [(line.message, line.originator) for line in client.log_lines(run.action.id)]
    client.close()

    service.restart()
    client = ServiceClient(service.endpoint)
    after = client.runs.GetRunDetails(rs.GetRunDetailsRequest(run_id=run.action.id.run)).details.action
    assert after == before
    assert len(after.attempts[0].phase_transitions) == 4
    lines_after = [(line.message, line.originator) for line in client.log_lines(run.action.id)]
    assert lines_after == lines_before
    assert sum(1 for _, o in lines_after if o == payload_pb2.USER) == 1000
    client.close()


def test_killed_service_ends_its_runs_on_restart(service: LocalService) -> None:
    """A task that died with the service ends FAILED (a live one is adopted: test_faults_restart)."""
    client = ServiceClient(service.endpoint)
    code = "import os, time\nprint('pid', os.getpid(), flush=True)\ntime.sleep(120)"
    run = client.create(python_task(code))
    pid = 0
    for response in client.logs.TailLogs(
        rl.TailLogsRequest(action_id=run.action.id),
        timeout=30,
    ):
        for line in response.logs[0].lines:
            if line.message.startswith("pid "):
                pid = int(line.message.split()[1])
        if pid:
            break
    client.close()
    service.kill()
    os.killpg(os.getpgid(pid), signal.SIGKILL)  # the task and its relay, while no service runs
    service.start()
    client = ServiceClient(service.endpoint)
    details = client.runs.GetActionDetails(rs.GetActionDetailsRequest(action_id=run.action.id)).details
    assert details.status.phase == P.ACTION_PHASE_FAILED
    assert details.error_info.kind == rd.ErrorInfo.KIND_SYSTEM
    assert "the service restarted while this run was running" in details.error_info.message
    deadline = time.monotonic() + 30
    while _alive(pid):
        assert time.monotonic() < deadline, f"the task (pid {pid}) outlived the kill"
        time.sleep(0.02)
    system = [
        line.message for line in client.log_lines(run.action.id) if line.originator == payload_pb2.SYSTEM
    ]
    # Ended as lost, not taken back: neither adoption note, and the service adopted nothing.
    assert sum("the service restarted while this run was running" in m for m in system) == 1
    assert not any("followed again" in m or "ended while it was down" in m for m in system)
    assert f"adopted run {run.action.id.run.name}" not in service.log_path.read_text()
    client.close()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
