"""Runs as trees of actions on the real service: tasks calling tasks start child actions
(QueueService/EnqueueAction, StateService/Watch), results and errors come back to the parent,
groups and parents are recorded, and ListActions/WatchActions show the tree."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from flyteidl2.dataproxy import dataproxy_service_pb2, dataproxy_service_pb2_grpc
from flyteidl2.workflow import run_logs_service_pb2, run_logs_service_pb2_grpc
from flyteidl2.workflow import run_service_pb2 as rs
from tree_support import P, actions, by_task, phase_name, run_id, stub

import flyte_run_widget as frw
from flyte_run_widget.errors import RunFailedError


@frw.task
async def leaf(i: int) -> int:
    print(f"leaf {i}")
    if i == 13:
        raise ValueError(f"child {i} refuses")
    return i * 2


@frw.task
async def fan_out(n: int, fail: bool) -> int:
    results: list[object] = []
    for g in range(3):
        with frw.group(f"group-{g}"):
            results += await asyncio.gather(
                *(leaf(i if fail else i + 100) for i in range(g, n, 3)), return_exceptions=True
            )
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise failures[0]
    return sum(r for r in results if isinstance(r, int))


def test_fan_out_of_50_children_in_3_groups(tree_service):
    run = frw.run(fan_out, n=50, fail=False)
    run.wait()
    assert run.phase == "succeeded", run.details().pb2.action.error_info
    assert run.outputs()[0] == sum((i + 100) * 2 for i in range(50))
    name = run.name
    tree = actions(tree_service, name)
    children = [a for a in tree if a.metadata.parent == "a0"]
    assert len(tree) == 51 and len(children) == 50
    assert sorted(a.metadata.group for a in children) == sorted(
        ["group-0"] * 17 + ["group-1"] * 17 + ["group-2"] * 16
    )
    assert {phase_name(a) for a in tree} == {"SUCCEEDED"}
    # Paging by parent: a page of 20 leaves a token, and the pages together are the 50.
    first = stub(tree_service).ListActions(
        rs.ListActionsRequest(run_id=run_id(name), request=_page(20, "a0"))
    )
    assert len(first.actions) == 20 and first.token
    assert [a.id.name for a in actions(tree_service, name, parent="a0")] == [a.id.name for a in children]
    # Each child's own data and log, as for a run's root.
    child = children[7]
    data = stub(tree_service).GetActionData(rs.GetActionDataRequest(action_id=child.id))
    assert [n.name for n in data.inputs.literals] == ["i"] and len(data.outputs.literals) == 1
    details = stub(tree_service).GetActionDetails(rs.GetActionDetailsRequest(action_id=child.id)).details
    assert details.metadata.parent == "a0" and details.status.phase == P.ACTION_PHASE_SUCCEEDED
    watched = list(stub(tree_service).WatchActionDetails(rs.WatchActionDetailsRequest(action_id=child.id)))
    assert watched[-1].details.status.phase == P.ACTION_PHASE_SUCCEEDED
    value = data.inputs.literals[0].value.scalar.primitive.integer
    channel = grpc.insecure_channel(tree_service.endpoint)
    for logs, request in (
        (
            run_logs_service_pb2_grpc.RunLogsServiceStub(channel),
            run_logs_service_pb2.TailLogsRequest(action_id=child.id, attempt=1),
        ),
        (
            dataproxy_service_pb2_grpc.DataProxyServiceStub(channel),
            dataproxy_service_pb2.TailLogsRequest(action_id=child.id, attempt=1),
        ),
    ):
        lines = [ln.message for r in logs.TailLogs(request) for batch in r.logs for ln in batch.lines]
        assert f"leaf {value}\n" in lines


def _page(limit: int, parent: str):
    from flyteidl2.common import list_pb2

    flt = list_pb2.Filter(function=list_pb2.Filter.EQUAL, field="parent_name", values=[parent])
    return list_pb2.ListRequest(limit=limit, filters=[flt])


def test_failing_child_raises_its_error_in_the_parent(tree_service):
    run = frw.run(fan_out, n=50, fail=True)
    run.wait()
    assert run.phase == "failed"
    error = run.details().pb2.action.error_info
    # The child's ValueError itself was raised in the parent, which failed with it.
    assert error.code == "ValueError" and "child 13 refuses" in error.message
    tree = actions(tree_service, run.name)
    leaves = by_task(tree, "leaf")
    assert len(leaves) == 50
    assert sorted(phase_name(a) for a in leaves) == ["FAILED"] + ["SUCCEEDED"] * 49
    with pytest.raises(RunFailedError):
        run.outputs()


@frw.task
def grandchild(x: int) -> int:
    return x + 1


@frw.task
def middle(x: int) -> int:
    # Sync tasks calling tasks: each call blocks until the child is done.
    return grandchild(x) * 10 + grandchild(x + 1)


@frw.task
async def top(n: int) -> list[int]:
    with frw.group("middles"):
        return list(await asyncio.gather(*(asyncio.to_thread(middle, i) for i in range(n))))


def test_nested_children_two_levels_deep(tree_service):
    run = frw.run(top, n=2)
    run.wait()
    assert run.phase == "succeeded", run.details().pb2.action.error_info
    assert run.outputs()[0] == [(i + 1) * 10 + (i + 2) for i in range(2)]
    name = run.name
    tree = actions(tree_service, name)
    mids = actions(tree_service, name, parent="a0")
    assert [m.metadata.task.short_name for m in mids] == ["middle", "middle"]
    assert {m.metadata.group for m in mids} == {"middles"}
    for mid in mids:
        kids = actions(tree_service, name, parent=mid.id.name)
        assert [k.metadata.task.short_name for k in kids] == ["grandchild", "grandchild"]
        assert {k.metadata.group for k in kids} == {""}
    assert len(tree) == 7


def test_watch_actions_snapshot_then_changes_with_counts(tree_service):
    run = frw.run(fan_out, n=12, fail=False)
    name = run.name
    seen: dict[str, int] = {}
    counts: dict[int, int] = {}
    batches = 0
    # The stream ends by itself once every action is final.
    for response in stub(tree_service).WatchActions(rs.WatchActionsRequest(run_id=run_id(name)), timeout=300):
        batches += 1
        assert 0 < len(response.enriched_actions) <= 100
        for enriched in response.enriched_actions:
            assert enriched.meets_filter
            seen[enriched.action.id.name] = enriched.action.status.phase
            if enriched.action.id.name == "a0":
                counts = dict(enriched.children_phase_counts)
    assert len(seen) == 13 and set(seen.values()) == {P.ACTION_PHASE_SUCCEEDED}
    assert counts == {P.ACTION_PHASE_SUCCEEDED: 12}
    assert batches > 1  # changes came after the snapshot


def test_list_actions_refuses_filters_it_does_not_support(tree_service):
    from flyteidl2.common import list_pb2

    run = frw.run(grandchild, x=1)
    run.wait()
    flt = list_pb2.Filter(function=list_pb2.Filter.CONTAINS, field="name", values=["a"])
    request = rs.ListActionsRequest(run_id=run_id(run.name), request=list_pb2.ListRequest(filters=[flt]))
    with pytest.raises(grpc.RpcError) as info:
        stub(tree_service).ListActions(request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "parent_name" in info.value.details()
