"""The widget's action tree in the kernel: merging what WatchActions and ListActions say, the
compact messages for the views, the fallback to polling, the static snapshot."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_service_pb2 as rs
from google.protobuf import timestamp_pb2

import flyte_run_widget as frw
from flyte_run_widget.client.rpc import get_client
from flyte_run_widget.client.streams import follow_actions
from flyte_run_widget.notebook import tree as tree_mod
from flyte_run_widget.notebook.tree import ActionTree

RUN = ids.RunIdentifier(org="o", project="proj", domain="development", name="rtree")


def action(
    name: str, phase: int, parent: str = "", group: str = "", task: str = "", start: int = 0
) -> rd.Action:
    a = rd.Action(id=ids.ActionIdentifier(run=RUN, name=name))
    a.metadata.parent = parent
    a.metadata.group = group
    if task:
        a.metadata.task.short_name = task
    a.status.phase = phase  # type: ignore[assignment]
    if start:
        a.status.start_time.CopyFrom(timestamp_pb2.Timestamp(seconds=start))
    return a


def enriched(*actions: rd.Action) -> list[rd.EnrichedAction]:
    return [rd.EnrichedAction(action=a, meets_filter=True) for a in actions]


# -- the tree itself ---------------------------------------------------------------------------


def test_sparse_updates_keep_what_earlier_messages_said():
    tree = ActionTree()
    tree.merge(enriched(action("a0", 4, task="main", start=100), action("c1", 1, "a0", "fan", "work", 101)))
    list(tree.drain())
    # The flyte backend's watch updates carry id, parent and phase only.
    assert tree.merge(enriched(action("c1", 5, "a0")))
    (msg,) = tree.drain()
    assert msg["k"] == [] and msg["i"] == [1] and msg["ph"] == [5]
    node = tree.nodes[1]
    assert (node.group, node.task, node.start_ms, node.parent) == ("fan", "work", 101_000.0, 0)
    assert not tree.merge(enriched(action("c1", 5, "a0"))), "an update that changes nothing"
    assert list(tree.drain()) == []


def test_a_child_before_its_parent_gets_a_placeholder_parent():
    tree = ActionTree()
    tree.merge(enriched(action("c2", 4, "c1")))
    tree.merge(enriched(action("c1", 4, "a0"), action("a0", 4)))
    assert [n.name for n in tree.nodes] == ["c2", "c1", "a0"]
    assert tree.nodes[0].parent == 1 and tree.nodes[1].parent == 2 and tree.nodes[2].parent == -1
    (msg,) = tree.drain()
    assert msg["n"] == ["c2", "c1", "a0"] and msg["p"] == [1, 2, -1]


def test_messages_are_bounded_and_replay_holds_everything(monkeypatch):
    monkeypatch.setattr(tree_mod, "MAX_ROWS_PER_MESSAGE", 300)
    tree = ActionTree()
    tree.merge(enriched(action("a0", 4), *(action(f"c{i}", 1, "a0", start=1000 + i) for i in range(1000))))
    msgs = list(tree.drain())
    assert [len(m["i"]) for m in msgs] == [300, 300, 300, 101]
    assert [n for m in msgs for n in m["n"]] == ["a0"] + [f"c{i}" for i in range(1000)]
    # start times travel as offsets from the message's base
    last = msgs[-1]
    assert last["b"] + last["s"][-1] == (1000 + 999) * 1000
    tree.merge(enriched(action("c7", 4, "a0")))
    (update,) = tree.drain()
    assert update["i"] == [8] and update["k"] == []
    replay = list(tree.replay())
    assert sum(len(m["k"]) for m in replay) == 1001


def test_static_snapshot_lists_phases_and_names_as_text():
    tree = ActionTree()
    hostile = "<script>alert(1)</script>"
    tree.merge(enriched(action("a0", 6), action(hostile, 6, "a0", group="<b>g</b>"), action("c2", 5, "a0")))
    html = tree.static_html()
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;g&lt;/b&gt;" in html
    assert "Actions: 3" in html and "failed 2" in html and "succeeded 1" in html
    assert tree.phase_counts() == {"failed": 2, "succeeded": 1}


# -- following a service ------------------------------------------------------------------------


class FakeRunService:
    """A gRPC RunService with only ListActions, or also WatchActions sending what the flyte
    backend does (snapshot, then changed actions with id, parent and phase only). Each list call
    moves the children one phase on; the root ends once they all have."""

    def __init__(self, watch: bool) -> None:
        self.calls: list[tuple[str, float]] = []
        self.step = 0
        self.lock = threading.Lock()
        handlers = {"ListActions": grpc.unary_unary_rpc_method_handler(
            self._list, rs.ListActionsRequest.FromString, rs.ListActionsResponse.SerializeToString
        )}  # fmt: skip
        if watch:
            handlers["WatchActions"] = grpc.unary_stream_rpc_method_handler(
                self._watch, rs.WatchActionsRequest.FromString, rs.WatchActionsResponse.SerializeToString
            )
        generic = grpc.method_handlers_generic_handler("flyteidl2.workflow.RunService", handlers)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[generic])
        self.address = f"127.0.0.1:{self.server.add_insecure_port('127.0.0.1:0')}"
        self.server.start()

    def actions(self, step: int, full: bool = True) -> list[rd.Action]:
        child_phase = min(1 + 2 * step, 5)
        root = 5 if child_phase == 5 else 4
        extra = {"group": "fan", "task": "work", "start": 200} if full else {}
        return [action("a0", root, task="main" if full else "")] + [
            action(f"c{i}", child_phase, "a0", **extra)  # type: ignore[arg-type]
            for i in range(3)
        ]

    def _list(self, request: Any, context: Any) -> rs.ListActionsResponse:
        with self.lock:
            self.calls.append(("ListActions", time.monotonic()))
            step, self.step = self.step, self.step + 1
        return rs.ListActionsResponse(actions=self.actions(step))

    def _watch(self, request: Any, context: Any) -> Iterator[rs.WatchActionsResponse]:
        self.calls.append(("WatchActions", time.monotonic()))
        yield rs.WatchActionsResponse(enriched_actions=enriched(*self.actions(0)))
        for step in (1, 2, 3):
            yield rs.WatchActionsResponse(enriched_actions=enriched(*self.actions(step, full=False)))


@pytest.fixture(params=[False, True], ids=["list-only", "watch"])
def fake(request):
    svc = FakeRunService(watch=request.param)
    frw.init(svc.address, project="proj", domain="development", insecure=True)
    yield svc, request.param
    svc.server.stop(None)


def test_follow_actions_watches_or_polls_until_the_run_ends(fake):
    svc, watch = fake
    tree = ActionTree()

    async def follow() -> int:
        batches = 0
        async for batch in follow_actions(get_client(), RUN, poll_interval=0.2):
            tree.merge(batch)
            batches += 1
        return batches

    batches = asyncio.run(follow())
    assert [tree.nodes[r].phase for r in range(4)] == [5, 5, 5, 5]
    # the sparse updates of the watch kept the group, task and start time of the snapshot
    assert [(n.group, n.task, n.start_ms) for n in tree.nodes[1:]] == [("fan", "work", 200_000.0)] * 3
    kinds = [k for k, _ in svc.calls]
    if watch:
        assert kinds == ["WatchActions"] and batches == 4
    else:
        assert kinds == ["ListActions"] * 3, "polled until every action was final, then stopped"
        times = [t for _, t in svc.calls]
        assert all(b - a >= 0.19 for a, b in itertools.pairwise(times)), "polled every 0.2 s"
