"""A real flyte program's run in JupyterLab: a kernel of the public flyte SDK 2.12.1 environment
runs ``flyte.init(endpoint=..., insecure=True)`` and ``run = flyte.run(main, ...)`` on the embedded
service (tasks run as local processes with that SDK, ``--flyte-python``), and ``run`` as the
cell's last expression is our widget with the action tree: the group and its children appear, a
click on a child shows that child's own log, and Abort (after its confirm step) ends the run
ABORTED with every task process gone. The children wait on a file the test never creates, so
the fan-out is running when it is aborted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import LocalService, ServiceClient  # tests/conftest.py

from flyte_run_widget.common.pids import pid_alive

from .conftest import ABORT, CONFIRM_YES, FRW, Lab, code_cell
from .test_sdk_kernel import _sdk_python, _service_phase
from .test_tree import TREE_ROWS, action_phase, tree_rows

pytestmark = pytest.mark.browser

PROGRAMS = Path(__file__).resolve().parent.parent / "flyte_programs"
CHILDREN = 3

# In a notebook the SDK ships the tasks pickled (by value, as they are defined in the notebook):
# the cell holds the program's source, as a user's notebook would, without its __main__ block
# (a kernel's __name__ is "__main__").
PROGRAM = (PROGRAMS / "gated_fanout.py").read_text().split('if __name__ == "__main__":')[0]

RUN = """
import flyte_run_widget

flyte.init(endpoint={endpoint!r}, insecure=True, project="proj", domain="development")
run = flyte.run(main, n={n}, pid_dir={pid_dir!r}, gate={gate!r})
run
"""


@pytest.fixture
def sdk_service(tmp_path: Path) -> Iterator[LocalService]:
    """Runs flyte tasks with the SDK's interpreter, every child of the fan-out at once."""
    python = _sdk_python("flyte-2.12.1")
    svc = LocalService(
        tmp_path / "data", args=["--flyte-python", python, "--max-child-actions", str(CHILDREN + 1)]
    )
    try:
        yield svc
    finally:
        svc.stop()


def _children(lab: Lab) -> list[dict[str, str]]:
    return [r for r in tree_rows(lab) if "held" in r["meta"] and "frw-tgroup" not in r["cls"]]


def _select(lab: Lab, name: str, shown: list[str] | None = None) -> list[str]:
    """Click the node ``name``; the children's lines its log shows once they are its own (no
    parent line, and not the lines ``shown`` of the node selected before, which the view holds
    until the new log arrives)."""
    lab.page.click(f"{TREE_ROWS}:has(.frw-tname:text-is('{name}')) .frw-tname")

    def own_lines() -> list[str] | None:
        texts = lab.row_texts()
        lines = [t for t in texts if "is waiting for the gate" in t]
        if lines and lines != shown and not any("fanning out" in t for t in texts):
            return lines
        return None

    return lab.wait_for(
        own_lines,
        f"the log of {name} to be shown (it holds {{}})",
        30,
        detail=lambda: lab.row_texts()[-8:],
    )


def test_sdk_fan_out_tree_child_logs_and_abort(lab: Lab, sdk_service: LocalService, tmp_path: Path) -> None:
    kernel = lab.server.add_kernel("frw-flyte-2.12.1", _sdk_python("flyte-2.12.1"))
    pid_dir, gate = tmp_path / "pids", tmp_path / "gate"
    pid_dir.mkdir()
    cell = PROGRAM + RUN.format(
        endpoint=f"http://{sdk_service.endpoint}",
        n=CHILDREN,
        pid_dir=str(pid_dir),
        gate=str(gate),
    )
    lab.open(lab.write_notebook("sdk_fanout", [code_cell(cell)], kernel=kernel))
    lab.run_all()
    lab.page.wait_for_selector(FRW, timeout=120_000)

    # The tree: the root, the group with its count, and every child running (each has started,
    # written its pid and is waiting on the gate).
    expected_pids = {"parent", *(f"child-{i}" for i in range(CHILDREN))}
    lab.wait_for(
        lambda: (
            len(_children(lab)) == CHILDREN
            and all("frw-phase-running" in r["cls"] for r in _children(lab))
            and {p.name for p in pid_dir.iterdir()} == expected_pids
        ),
        f"the {CHILDREN} children to run ({{}})",
        120,
        detail=lambda: (tree_rows(lab), sorted(p.name for p in pid_dir.iterdir())),
    )
    rows = tree_rows(lab)
    groups = [r for r in rows if "frw-tgroup" in r["cls"]]
    assert [(g["name"], g["meta"]) for g in groups] == [("held", f"{CHILDREN} actions")], rows
    assert len(rows) == CHILDREN + 2, rows  # the root, the group, the children
    run_name = lab.run_name()
    assert lab.phase() == "running"
    # The root's own log first: the parent's line, none of a child's.
    lab.wait_for(
        lambda: any("fanning out to 3" in t for t in lab.row_texts()),
        "the parent's log ({})",
        60,
        detail=lambda: lab.row_texts()[-8:],
    )
    lab.screenshot("running")

    # A click on a child switches the log to that child's: its own line only.
    first, second = (r["name"] for r in _children(lab)[:2])
    first_lines = _select(lab, first)
    assert len(first_lines) == 1, f"{first}'s log holds other actions' lines: {first_lines}"
    second_lines = _select(lab, second, shown=first_lines)
    assert len(second_lines) == 1, (first_lines, second_lines)
    lab.screenshot("child-log")

    # Abort of the whole run, with its confirm step, while the fan-out runs.
    client = ServiceClient(sdk_service.endpoint)
    try:
        lab.page.click(ABORT, timeout=10_000)
        lab.page.wait_for_selector(CONFIRM_YES, state="visible", timeout=10_000)
        assert _service_phase(client, run_name) == "running", "aborted before the confirm"
        lab.page.click(CONFIRM_YES, timeout=10_000)
        lab.wait_for(
            lambda: _service_phase(client, run_name) == "aborted",
            f"run {run_name} to be ABORTED in the service (it is {{}})",
            60,
            interval=0.2,
            detail=lambda: _service_phase(client, run_name),
        )
    finally:
        client.close()
    pids = {p.name: int(p.read_text()) for p in pid_dir.iterdir()}
    # The task runtime stops none of its children itself: the service must have, by the time
    # the run is ABORTED.
    assert not [name for name, pid in pids.items() if pid_alive(pid)], pids
    endpoint = sdk_service.endpoint
    assert {action_phase(endpoint, run_name, r["name"]) for r in rows if "held" in r["meta"]} == {"aborted"}
    lab.wait_for_phase("aborted", 30)
    lab.wait_for(
        lambda: all("frw-phase-aborted" in r["cls"] for r in _children(lab)),
        "every child node to show ABORTED ({})",
        30,
        detail=lambda: tree_rows(lab),
    )
    assert not gate.exists()
    lab.screenshot("aborted")
