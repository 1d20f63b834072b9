"""The action tree in a real Chromium in JupyterLab, against the real service with real child
actions: it appears and follows the run live, a click on a node switches the log to it, a node's
Abort (after its confirm step) aborts that action while a cell blocks in ``run.wait()``, and
hostile group and task names stay text. Children block on a file the test creates."""

from __future__ import annotations

from pathlib import Path

import pytest

import flyte_run_widget as frw

from .conftest import FRW, Lab, code_cell, setup_cell

pytestmark = pytest.mark.browser

TREE_ROWS = ".frw .frw-tree .frw-trow"
HOSTILE_GROUP = "<b>grp</b><img src=x onerror=alert(22)>"
HOSTILE_TASK = "<img src=x onerror=alert(21)>step"

TASKS = """
import asyncio, os, time
GATE = {gate!r}

async def _held(name: str) -> str:
    print(f"child {{name}} is running", flush=True)
    while not os.path.exists(GATE):
        time.sleep(0.05)
    return name

step = frw.task(_held, name={task!r})

@frw.task
async def parent() -> list:
    with frw.group({group!r}):
        results = await asyncio.gather(*(step(f"c{{i}}") for i in range(6)), return_exceptions=True)
    return [r if isinstance(r, str) else type(r).__name__ for r in results]

run = frw.run(parent)
run
"""


def tree_rows(lab: Lab) -> list[dict[str, str]]:
    return list(
        lab.page.eval_on_selector_all(
            TREE_ROWS,
            """(rows) => rows.map((r) => ({
                name: r.querySelector('.frw-tname').textContent,
                meta: r.querySelector('.frw-tmeta').textContent,
                cls: r.className,
            }))""",
        )
    )


def action_phase(endpoint: str, run_name: str, name: str) -> str:
    frw.init(endpoint, project="proj", domain="development")
    return frw.Action.get(run_name, name).phase


def test_tree_live_select_abort_while_blocked_and_hostile_names(lab: Lab, service, tmp_path: Path) -> None:
    gate = tmp_path / "open"
    first = setup_cell(service.endpoint) + TASKS.format(
        gate=str(gate), task=HOSTILE_TASK, group=HOSTILE_GROUP
    )
    nb = lab.write_notebook("tree", [code_cell(first), code_cell("run.wait()\nprint('waited:', run.phase)")])
    lab.open(nb)
    lab.run_all()
    lab.page.wait_for_selector(FRW, timeout=30_000)
    # The tree appears: the root, the group node with its count, six children, live phases
    # (the service runs a few children at once; the others show as queued).
    lab.wait_for(
        lambda: (
            len(tree_rows(lab)) == 8 and sum("frw-phase-running" in r["cls"] for r in tree_rows(lab)) >= 3
        ),
        "the root and two children to show as running ({})",
        90,
        detail=lambda: tree_rows(lab),
    )
    rows = tree_rows(lab)
    group = next(r for r in rows if "frw-tgroup" in r["cls"])
    assert group["name"] == HOSTILE_GROUP and group["meta"] == "6 actions"
    assert sum(HOSTILE_TASK in r["meta"] for r in rows) == 6
    lab.screenshot("tree-running")
    # Cell B blocks in run.wait().
    lab.wait_for(
        lambda: lab.execution_counts()[0] is not None and lab.execution_counts()[1] is None,
        "cell B to block in run.wait() (counts {})",
        30,
        detail=lab.execution_counts,
    )
    run_name = lab.run_name()
    child = next(r["name"] for r in rows if HOSTILE_TASK in r["meta"] and "frw-phase-running" in r["cls"])
    # Selecting a node switches the log to that action's.
    lab.page.click(f"{TREE_ROWS}:has(.frw-tname:text-is('{child}')) .frw-tname")
    lab.wait_for(
        lambda: any("is running" in t for t in lab.row_texts()) and "frw-sel" in _row(lab, child)["cls"],
        f"the log of {child} to be shown ({{}})",
        30,
        detail=lab.row_texts,
    )
    shown = [t for t in lab.row_texts() if "is running" in t]
    assert len(shown) == 1, f"the log holds another action's lines too: {shown}"
    # The node's Abort, with its confirm step, while cell B blocks.
    lab.page.click(f"{FRW} .frw-tree button.frw-tabort")
    assert action_phase(service.endpoint, run_name, child) == "running", "aborted before the confirm"
    lab.page.click(f"{FRW} .frw-tree button[data-do=yes]")
    lab.wait_for(
        lambda: action_phase(service.endpoint, run_name, child) == "aborted",
        f"action {child} to be ABORTED in the service while cell B blocks ({{}})",
        30,
        detail=lambda: action_phase(service.endpoint, run_name, child),
    )
    assert lab.execution_counts()[1] is None, "cell B stopped blocking before the abort"
    lab.wait_for(
        lambda: "frw-phase-aborted" in _row(lab, child)["cls"],
        "the node to show ABORTED ({})",
        30,
        detail=lambda: _row(lab, child),
    )
    lab.screenshot("child-aborted")
    gate.write_text("")
    lab.wait_for_phase("succeeded", 90)
    lab.wait_for(
        lambda: sum("frw-phase-succeeded" in r["cls"] for r in tree_rows(lab)) == 6,
        "the root and five children to succeed ({})",
        60,
        detail=lambda: tree_rows(lab),
    )
    injected = lab.page.eval_on_selector_all(
        ".frw img, .frw script, .frw b, .frw [onerror]", "(els) => els.map((e) => e.outerHTML)"
    )
    assert injected == [], f"elements made from names: {injected}"
    assert lab.dialogs == [], f"a script ran: {lab.dialogs}"
    lab.screenshot("tree-done")


def _row(lab: Lab, name: str) -> dict[str, str]:
    return next((r for r in tree_rows(lab) if r["name"] == name), {"cls": "", "name": "", "meta": ""})
