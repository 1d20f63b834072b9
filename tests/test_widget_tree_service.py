"""Action and the widget's action tree over the real service, with real child actions: the
model lists and reads children, the widget sends the tree, switches the panels to a selected
child and aborts one child while its siblings go on. Tasks block on files, never on time."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest
from tree_support import eventually

import flyte_run_widget as frw
from flyte_run_widget.errors import RunFailedError
from flyte_run_widget.remote.log_lines import decode_batch


@frw.task
async def leaf(i: int) -> int:
    print(f"leaf {i} says hello")
    if i == 4:
        raise ValueError(f"leaf {i} refuses")
    return i * 2


@frw.task
async def fan(n: int) -> list[str]:
    results = []
    for g in range(2):
        with frw.group(f"group-{g}"):
            results += await asyncio.gather(*(leaf(i) for i in range(g, n, 2)), return_exceptions=True)
    return [type(r).__name__ if isinstance(r, BaseException) else str(r) for r in results]


def _gate(folder: str, name: str) -> None:
    Path(folder, f"{name}.started").write_text("")
    while not os.path.exists(os.path.join(folder, "open")):
        time.sleep(0.02)


@frw.task
async def held(folder: str, name: str) -> str:
    print(f"{name} holding", flush=True)
    _gate(folder, name)
    return name


@frw.task
async def pair(folder: str) -> list[str]:
    results = await asyncio.gather(held(folder, "x"), held(folder, "y"), return_exceptions=True)
    return [r if isinstance(r, str) else type(r).__name__ for r in results]


def test_actions_of_a_run_with_children(tree_service, capsys):
    run = frw.run(fan, n=6)
    run.wait(quiet=True)
    assert run.phase == "succeeded"
    every = list(run.actions())
    assert len(every) == 7 and every[0].name == "a0" and every[0].parent is None
    children = list(frw.Action.listall(run.name, parent_name="a0"))
    assert len(children) == 6 and {c.parent for c in children} == {"a0"}
    assert sorted(c.group or "" for c in children) == ["group-0"] * 3 + ["group-1"] * 3
    assert {c.task_name for c in children} == {"leaf"}
    failed = list(frw.Action.listall(run.name, in_phase=["failed"]))
    assert len(failed) == 1 and failed[0].phase == "failed"
    with pytest.raises(RunFailedError, match="leaf 4 refuses"):
        failed[0].outputs()
    ok = next(c for c in children if c.phase == "succeeded")
    i = ok.inputs()["i"]
    assert ok.outputs()[0] == i * 2 and ok.attempts == 1
    ok.show_logs(raw=True)
    assert f"leaf {i} says hello" in capsys.readouterr().out


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.logs: list[str] = []
        self.tree: list[dict] = []
        self.resets = 0

    def __call__(self, content: dict, buffers: list | None = None) -> None:
        with self.lock:
            if content.get("type") == "logs":
                self.logs += [text for _, _, text in decode_batch(content["count"], buffers)]
            elif content.get("type") == "tree":
                self.tree.append(content)
            elif content.get("type") == "logs_reset":
                self.resets += 1
                self.logs = []

    def names(self) -> set[str]:
        with self.lock:
            return {n for m in self.tree for n in m["n"]}


@pytest.fixture
def recorder(monkeypatch):
    rec = Recorder()
    monkeypatch.setattr(frw.RunWidget, "send", lambda self, content, buffers=None: rec(content, buffers))
    return rec


def test_widget_follows_the_tree_and_shows_a_selected_child(tree_service, recorder):
    run = frw.run(fan, n=6)
    w = run.widget()
    eventually(lambda: w.phase == "succeeded" and w._tree_done, what="the run and its tree to end")
    assert w.tree_size == 7 and len(recorder.names()) == 7
    assert w._tree.phase_counts() == {"succeeded": 6, "failed": 1}
    # Updates came batched at the flush cadence, not one message per change.
    assert len(recorder.tree) <= 30
    failed = next(n.name for n in w._tree.nodes if n.phase == 6)
    w._on_frontend_msg(w, {"type": "select", "name": failed}, [])
    eventually(lambda: w.selected == failed and w.error.get("message"), what="the child's error")
    assert "leaf 4 refuses" in w.error["message"] and w.outputs == ""
    eventually(lambda: any("leaf 4 says hello" in t for t in recorder.logs), what="the child's log")
    assert recorder.resets == 1
    ok = next(n.name for n in w._tree.nodes if n.phase == 5 and n.parent == 0)
    w._on_frontend_msg(w, {"type": "select", "name": ok}, [])
    eventually(lambda: w.selected == ok and w.outputs, what="the child's outputs")
    assert w.error == {} and w.outputs.startswith("o0 = ")
    # Back to the run: its own outputs
    w._on_frontend_msg(w, {"type": "select", "name": "a0"}, [])
    eventually(lambda: w.selected == "" and "o0 = [" in w.outputs, what="the run's outputs")
    html = w.static_html()
    assert "Actions: 7" in html and "group-0" in html and "FAILED" in html
    # A late view asks for the whole tree.
    before = len(recorder.tree)
    w._on_frontend_msg(w, {"type": "tree_request"}, [])
    eventually(lambda: len(recorder.tree) > before, what="the replay")
    assert sum(len(m["k"]) for m in recorder.tree[before:]) == 7
    w.close()


def test_abort_one_child_from_the_widget(tree_service, recorder, tmp_path):
    folder = tmp_path / "gates"
    folder.mkdir()
    run = frw.run(pair, folder=str(folder))
    w = run.widget()
    eventually(lambda: (folder / "x.started").exists() and (folder / "y.started").exists(), what="x and y")
    eventually(lambda: len(w._tree.nodes) == 3, what="the tree")
    x = next(n.name for n in w._tree.nodes if n.name != "a0" and n.phase == 4)
    aborted = frw.Action.get(run.name, x).inputs()["name"]
    w._on_frontend_msg(w, {"type": "abort_action", "name": "a0"}, [])  # the root: the header's Abort
    w._on_frontend_msg(w, {"type": "abort_action", "name": x, "reason": "clicked"}, [])
    eventually(lambda: w._tree.nodes[w._tree.rows[x]].phase == 7, what="the child to be aborted")
    assert w.phase == "running", "the run goes on"
    (folder / "open").write_text("")
    eventually(lambda: w.phase == "succeeded", what="the run to end")
    # Both were held on the same gate: only the abort can have ended one of them.
    expected = ["ChildActionError" if n == aborted else n for n in ("x", "y")]
    assert run.outputs()[0] == expected
    phases = {n.name: n.phase for n in w._tree.nodes}
    assert sorted(phases.values()) == [5, 5, 7]
    w.close()
