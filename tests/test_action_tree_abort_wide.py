"""AbortRun on a run with thousands of queued children: the service ends the queued ones in
chunks (yielding between them), and the parent sees its first children ABORTED long before the
last chunk. A parent that then ends (as a task does when a child it awaits fails) must end
ABORTED, as the run was aborted, not FAILED with "child action ... ended ABORTED".

The window is made wide on purpose, never with a sleep: the parent stops the service (SIGSTOP)
as soon as it sees an aborted child and ends; the test resumes the service once the parent's
process is gone, so the service finds the parent ended while chunks of queued children are
still left to abort."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path

import pytest
from conftest import LocalService
from flyteidl2.workflow import run_service_pb2 as rs
from tree_support import DOMAIN, PROJECT, actions, alive, eventually, phase_name, run_id, stub

import flyte_run_widget as frw


# Task bodies are sent by value; what they call must be in this module.
def _wait_for(path: str) -> None:
    import time

    while not os.path.exists(path):
        time.sleep(0.05)


@frw.task
async def gated(folder: str, i: int) -> int:
    _wait_for(os.path.join(folder, "open"))  # never opened: one runs, the others stay queued
    return i


@frw.task
async def quitter(folder: str, n: int, service: int) -> int:
    try:
        return sum(await asyncio.gather(*(gated(folder, i) for i in range(n))))
    except Exception as exc:
        # The first child it sees ABORTED: hold the service (the test resumes it once this
        # process and its relay are gone), then end at once.
        os.kill(service, signal.SIGSTOP)
        marker = Path(folder) / "saw"
        marker.with_suffix(".tmp").write_text(f"{os.getpid()} {os.getppid()} {exc}")
        marker.with_suffix(".tmp").replace(marker)
        os._exit(3)


@pytest.mark.timeout(900)  # enqueueing thousands of children on a loaded machine
def test_abort_run_with_thousands_queued_ends_the_parent_aborted(tmp_path):
    n = 4000
    folder = tmp_path / "gates"
    folder.mkdir()
    service = LocalService(tmp_path / "data", args=["--max-child-actions", "1"])
    proc = service.proc
    assert proc is not None
    try:
        frw.init(service.endpoint, project=PROJECT, domain=DOMAIN)
        run = frw.run(quitter, folder=str(folder), n=n, service=proc.pid)
        eventually(lambda: len(actions(service, run.name)) == n + 1, timeout=600, what=f"{n} children")
        errors: list[BaseException] = []

        def abort() -> None:
            try:
                request = rs.AbortRunRequest(run_id=run_id(run.name), reason="enough")
                stub(service).AbortRun(request, timeout=300)
            except BaseException as e:  # reported by the test's thread
                errors.append(e)

        aborter = threading.Thread(target=abort)
        aborter.start()
        saw = folder / "saw"
        try:
            # The fixed service stops the parent first: it may end before seeing any child.
            eventually(lambda: saw.exists() or not aborter.is_alive(), timeout=300, what="the abort")
            if saw.exists():
                task, relay = (int(p) for p in saw.read_text().split()[:2])
                eventually(lambda: not alive(task) and not alive(relay), what="the parent to end")
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        aborter.join(300)
        assert not aborter.is_alive() and not errors, errors
        tree = {a.id.name: a for a in actions(service, run.name)}
        root = tree["a0"]
        assert phase_name(root) == "ABORTED", root.status
        assert {phase_name(a) for name, a in tree.items() if name != "a0"} == {"ABORTED"}
    finally:
        service.stop()
