"""Stopping parts of a tree on the real service: AbortAction ends an action and its subtree
(processes killed) while siblings go on, AbortRun ends every action (queued ones without
starting), and a service killed mid-tree keeps the tree and adopts the children still running.
Tasks block on files the test creates, never on time."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from conftest import FixedPortService
from flyteidl2.workflow import run_service_pb2 as rs
from tree_support import P, actions, alive, by_task, eventually, phase_name, pids_in, run_id, stub

import flyte_run_widget as frw
from flyte_run_widget.common.phase import is_terminal


# Task bodies are sent by value; helpers they call must be in this module, not tree_support.
def _pid(folder: str, name: str) -> None:
    path = Path(folder) / f"{name}.pid"
    path.with_suffix(".tmp").write_text(str(os.getpid()))
    path.with_suffix(".tmp").replace(path)


def _gate(folder: str) -> None:
    while not os.path.exists(os.path.join(folder, "open")):
        time.sleep(0.02)


@frw.task
async def held(folder: str, name: str) -> str:
    _pid(folder, name)
    _gate(folder)
    return name


@frw.task
async def holder(folder: str) -> str:
    _pid(folder, "holder")
    return await held(folder, "grand")


@frw.task
async def siblings(folder: str) -> list[str]:
    _pid(folder, "root")
    results = await asyncio.gather(
        holder(folder), held(folder, "sib1"), held(folder, "sib2"), return_exceptions=True
    )
    return [r if isinstance(r, str) else type(r).__name__ for r in results]


def test_abort_one_child_ends_its_subtree_and_siblings_go_on(tree_service, tmp_path):
    folder = tmp_path / "gates"
    folder.mkdir()
    run = frw.run(siblings, folder=str(folder))
    names = {"root", "holder", "grand", "sib1", "sib2"}
    eventually(lambda: {p.stem for p in folder.glob("*.pid")} >= names, what="every task to start")
    pids = {p.stem: int(p.read_text()) for p in folder.glob("*.pid")}
    (mid,) = by_task(actions(tree_service, run.name, parent="a0"), "holder")
    stub(tree_service).AbortAction(rs.AbortActionRequest(action_id=mid.id, reason="not this one"))
    tree = {a.id.name: a for a in actions(tree_service, run.name)}
    (grand,) = actions(tree_service, run.name, parent=mid.id.name)
    assert phase_name(tree[mid.id.name]) == "ABORTED" and phase_name(tree[grand.id.name]) == "ABORTED"
    eventually(
        lambda: not alive(pids["holder"]) and not alive(pids["grand"]), what="the subtree's processes to end"
    )
    # The siblings and the parent still run.
    assert all(alive(pids[n]) for n in ("root", "sib1", "sib2"))
    sibs = [a for a in by_task(actions(tree_service, run.name, parent="a0"), "held")]
    assert [phase_name(a) for a in sibs] == ["RUNNING", "RUNNING"]
    (folder / "open").touch()
    run.wait()
    assert run.phase == "succeeded", run.details().pb2.action.error_info
    # The parent saw its aborted child as an error, and its siblings' results.
    assert run.outputs()[0] == ["ChildActionError", "sib1", "sib2"]


@frw.task
async def wide(folder: str, n: int) -> int:
    _pid(folder, "root")
    return len(await asyncio.gather(*(held(folder, f"leaf{i}") for i in range(n))))


def test_abort_run_ends_every_action_queued_ones_too(tree_service, tmp_path):
    folder = tmp_path / "gates"
    folder.mkdir()
    run = frw.run(wide, folder=str(folder), n=10)
    # 6 children at most run at once (the fixture's --max-child-actions): 4 wait QUEUED.
    eventually(lambda: len(pids_in(folder)) == 7, what="the root and 6 children to start")

    def queued() -> list[object]:
        kids = actions(tree_service, run.name, parent="a0")
        return [a for a in kids if a.status.phase == P.ACTION_PHASE_QUEUED] if len(kids) == 10 else []

    assert len(eventually(queued, what="4 queued children")) == 4
    pids = pids_in(folder)
    stub(tree_service).AbortRun(rs.AbortRunRequest(run_id=run_id(run.name), reason="stop everything"))
    tree = actions(tree_service, run.name)
    assert len(tree) == 11 and {phase_name(a) for a in tree} == {"ABORTED"}
    eventually(lambda: not any(alive(p) for p in pids), what="every task process to end")
    assert len(pids_in(folder)) == 7  # the queued children never started


def test_restart_mid_tree_keeps_the_tree_and_adopts_running_children(tmp_path):
    folder = tmp_path / "gates"
    folder.mkdir()
    service = FixedPortService(tmp_path / "data")
    try:
        frw.init(service.endpoint, project="treeproj", domain="development")
        run = frw.run(wide, folder=str(folder), n=2)
        eventually(lambda: len(pids_in(folder)) == 3, what="the root and both children to start")
        before = {a.id.name: a for a in actions(service, run.name)}
        assert len(before) == 3
        service.kill()  # SIGKILL: the tasks go on without a service
        service.start()
        after = {a.id.name: a for a in actions(service, run.name)}
        assert after.keys() == before.keys()
        assert {phase_name(a) for a in after.values()} == {"RUNNING"}
        assert after[next(n for n in after if n != "a0")].metadata.parent == "a0"
        (folder / "open").touch()

        def done() -> object:
            details = stub(service).GetRunDetails(rs.GetRunDetailsRequest(run_id=run_id(run.name))).details
            return details if is_terminal(details.action.status.phase) else None

        details = eventually(done, what="the run to end")
        assert details.action.status.phase == P.ACTION_PHASE_SUCCEEDED, details.action.error_info
        assert {phase_name(a) for a in actions(service, run.name)} == {"SUCCEEDED"}
        assert "adopted action" in service.log_path.read_text()
    finally:
        service.stop()
