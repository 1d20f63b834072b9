"""SIGTERM while a run fans out: the service ends (it once hung in its teardown, or exited 1,
when a task had hundreds of calls open on one connection) and the next start finds every action
of the tree ended, none left QUEUED or RUNNING."""

from __future__ import annotations

import asyncio
import signal
import subprocess

from conftest import LocalService
from tree_support import DOMAIN, PROJECT, actions, eventually, phase_name

import flyte_run_widget as frw
from flyte_run_widget.common.phase import is_terminal


@frw.task
async def leaf(i: int) -> int:
    return i


@frw.task
async def fan(n: int) -> int:
    return sum(await asyncio.gather(*(leaf(i) for i in range(n))))


def test_sigterm_with_hundreds_of_queued_children_ends_and_leaves_the_tree_ended(tmp_path):
    n = 300
    service = LocalService(tmp_path / "data", args=["--max-child-actions", "2"])
    try:
        frw.init(service.endpoint, project=PROJECT, domain=DOMAIN)
        run = frw.run(fan, n=n)

        def mostly_queued() -> bool:
            found = actions(service, run.name)
            return len(found) == n + 1 and sum(phase_name(a) == "QUEUED" for a in found) > n // 2

        eventually(mostly_queued, what=f"{n} children, most of them QUEUED")
        proc = service.proc
        assert proc is not None
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(90)  # an upper bound for a loaded machine, not a pause
        except subprocess.TimeoutExpired:
            raise AssertionError("the service did not end on SIGTERM") from None
        assert code == 0, service.log_path.read_text()[-3000:]
        service.proc = None

        service.start()
        tree = actions(service, run.name)
        assert len(tree) == n + 1
        open_ones = [a.id.name for a in tree if not is_terminal(a.status.phase)]
        assert open_ones == []
        root = next(a for a in tree if a.id.name == "a0")
        assert phase_name(root) == "ABORTED"
        # The children still queued were ended without starting, as the run was.
        assert sum(phase_name(a) == "ABORTED" for a in tree) > n // 2
    finally:
        service.stop()


_STUCK = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from flyte_run_widget.server.runner import run_service

async def stubborn() -> None:
    # Like a connection hypercorn cut mid-send: cancelled, it goes on waiting.
    while True:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            continue

async def main() -> None:
    asyncio.get_running_loop().create_task(stubborn())
    await asyncio.sleep(0)

run_service(main(), leftover=0.5)
print("ended")
"""


def test_the_service_loop_ends_even_when_a_task_ignores_its_cancellation():
    import sys
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[1])
    try:
        done = subprocess.run(
            [sys.executable, "-c", _STUCK, repo], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        raise AssertionError("the loop waited for a task that never ends") from None
    assert done.returncode == 0 and done.stdout.strip() == "ended", done.stderr
    assert "Task was destroyed" not in done.stderr
