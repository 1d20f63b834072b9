"""The line that opens every attempt's log says which task started, which attempt, and the
task's pid; a Python task's pickled function travels in a file of the attempt (mode 0600),
never on the command line that every user of the machine sees."""

from __future__ import annotations

import base64
import os
import stat
import sys
import time
from pathlib import Path

import pytest
from conftest import LocalService, ServiceClient, python_task
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.logs.dataplane import payload_pb2
from flyteidl2.workflow import run_logs_service_pb2 as rl
from flyteidl2.workflow import run_service_pb2 as rs
from tree_support import DOMAIN, PROJECT, P, actions, eventually

import flyte_run_widget as frw

PRINTS_PID = "import os; print('pid', os.getpid(), flush=True)"
# Fails its first attempt (no marker yet), succeeds on the next.
FAILS_ONCE = (
    "import os, sys\n"
    "print('pid', os.getpid(), flush=True)\n"
    "if not os.path.exists(sys.argv[1]):\n"
    "    open(sys.argv[1], 'w').close()\n"
    "    sys.exit(3)\n"
)


@frw.task(name="tasks.train")
def train(gate: str) -> int:
    print("pid", os.getpid(), flush=True)
    while not os.path.exists(gate):
        time.sleep(0.02)
    return 1


@frw.task(name="tasks.square")
def square(x: int) -> int:
    print("pid", os.getpid(), flush=True)
    return x * x


@frw.task(name="tasks.parent")
def parent(x: int) -> int:
    return square(x) + 1


def _action(run: str, action: str = "a0", project: str = "", domain: str = "") -> ids.ActionIdentifier:
    return ids.ActionIdentifier(run=ids.RunIdentifier(project=project, domain=domain, name=run), name=action)


def _first_and_pid(
    client: ServiceClient, action_id: ids.ActionIdentifier, attempt: int = 0
) -> tuple[str, str]:
    """The log's first line, and the pid the task printed."""
    lines = client.log_lines(action_id, attempt)
    assert lines and lines[0].originator == payload_pb2.SYSTEM, [line.message for line in lines]
    pids = [line.message.split()[1] for line in lines if line.message.startswith("pid ")]
    assert len(pids) == 1, [line.message for line in lines]
    return lines[0].message.rstrip("\n"), pids[0]


def test_a_plain_task_log_opens_with_its_name_attempt_and_pid(client: ServiceClient) -> None:
    run = client.create(python_task(PRINTS_PID, name="tasks.train"))
    assert client.wait(run.action.id).status.phase == P.ACTION_PHASE_SUCCEEDED
    first, pid = _first_and_pid(client, run.action.id)
    assert first == f"started tasks.train, attempt 1, pid {pid}"


def test_a_task_name_with_control_characters_stays_one_line_of_text(client: ServiceClient) -> None:
    run = client.create(python_task(PRINTS_PID, name="tasks.\x1b[31mevil\nname\u202e"))
    assert client.wait(run.action.id).status.phase == P.ACTION_PHASE_SUCCEEDED
    first, pid = _first_and_pid(client, run.action.id)
    assert first == f"started tasks.\\x1b[31mevil\\nname\\u202e, attempt 1, pid {pid}"


def test_a_retry_attempt_log_opens_with_its_own_attempt_and_pid(
    client: ServiceClient, tmp_path: Path
) -> None:
    run = client.create(python_task(FAILS_ONCE, str(tmp_path / "failed-once"), retries=1))
    details = client.wait(run.action.id)
    assert len(details.attempts) == 2 and details.status.phase == P.ACTION_PHASE_SUCCEEDED
    first, pid = _first_and_pid(client, run.action.id, attempt=1)
    assert first == f"started tests.task, attempt 1, pid {pid}"
    second, pid2 = _first_and_pid(client, run.action.id, attempt=2)
    assert second == f"started tests.task, attempt 2, pid {pid2}"


def test_a_child_action_log_opens_with_the_child_task_name(tree_service: LocalService) -> None:
    run = frw.run(parent, x=7)
    run.wait(quiet=True)
    assert run.phase == "succeeded" and run.outputs()[0] == 50
    (child,) = [a for a in actions(tree_service, run.name) if a.metadata.parent == "a0"]
    client = ServiceClient(tree_service.endpoint)
    try:
        first, pid = _first_and_pid(client, _action(run.name, child.id.name, PROJECT, DOMAIN))
        root = client.log_lines(_action(run.name, "a0", PROJECT, DOMAIN))
    finally:
        client.close()
    assert first == f"started tasks.square, attempt 1, pid {pid}"
    assert root[0].message.startswith("started tasks.parent, attempt 1, pid "), root[0].message


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/cmdline")
def test_the_function_travels_in_a_private_file_not_on_the_command_line(
    tree_service: LocalService, tmp_path: Path
) -> None:
    gate = tmp_path / "go"
    run = frw.run(train, gate=str(gate))
    client = ServiceClient(tree_service.endpoint)
    try:
        action_id = _action(run.name, "a0", PROJECT, DOMAIN)
        pid = _printed_pid(client, action_id)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()  # the task is held by the gate
        spec = client.runs.GetActionDetails(rs.GetActionDetailsRequest(action_id=action_id)).details.task
    finally:
        client.close()
    args = list(spec.task_template.container.args)
    payload = args[args.index("--fn") + 1]  # the spec still carries it: a cluster runs it as is
    pickled = base64.b64decode(payload)
    assert payload.encode() not in cmdline and pickled not in cmdline and pickled[:64] not in cmdline
    argv = cmdline.split(b"\0")
    assert b"--fn" not in argv, argv
    fn_file = Path(os.fsdecode(argv[argv.index(b"--fn-file") + 1]))
    assert fn_file.parent == tree_service.data_dir / "runs" / run.name / "a0" / "attempt-1"
    assert stat.S_IMODE(fn_file.stat().st_mode) == 0o600
    assert fn_file.read_bytes() == pickled
    gate.touch()
    run.wait(quiet=True)
    assert run.phase == "succeeded" and run.outputs()[0] == 1
    assert fn_file.exists(), "kept with the attempt's other files"


def _printed_pid(client: ServiceClient, action_id: ids.ActionIdentifier) -> int:
    """The pid the running task printed, following its live log."""

    def printed() -> int | None:
        stream = client.logs.TailLogs(rl.TailLogsRequest(action_id=action_id), timeout=60)
        try:
            for response in stream:
                for logs in response.logs:
                    for line in logs.lines:
                        if line.message.startswith("pid "):
                            return int(line.message.split()[1])
        finally:
            stream.cancel()
        return None

    return eventually(printed, what="the task's pid line")


def test_the_full_command_is_in_the_service_log_with_debug_only(tmp_path: Path) -> None:
    marker = "print('full command wanted')"
    for args, logged in (([], False), (["--debug"], True)):
        service = LocalService(tmp_path / f"data{len(args)}", args=args)
        try:
            client = ServiceClient(service.endpoint)
            run = client.create(python_task(marker, "an-argument"))
            assert client.wait(run.action.id).status.phase == P.ACTION_PHASE_SUCCEEDED
            client.close()
        finally:
            service.stop()
        text = service.log_path.read_text()
        line = [line for line in text.splitlines() if "full command wanted" in line]
        assert bool(line) == logged, text
        if logged:
            assert f"run {run.action.id.run.name}, action a0, attempt 1 runs: " in line[0]
            assert line[0].endswith("an-argument"), line[0]
