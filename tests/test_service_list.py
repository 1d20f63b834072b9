"""ListRuns (filters, sort, pages) and WatchRuns over real loopback gRPC."""

from __future__ import annotations

import getpass
from collections.abc import Iterator

import grpc
import pytest
from conftest import LocalService, ServiceClient, container_task, python_task
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.common import list_pb2, phase_pb2
from flyteidl2.task import task_definition_pb2
from flyteidl2.workflow import run_service_pb2 as rs

P = phase_pb2
F = list_pb2.Filter
ASC, DESC = list_pb2.Sort.ASCENDING, list_pb2.Sort.DESCENDING
SCOPE = ids.ProjectIdentifier(name="proj", domain="development")
TOTAL = 250


def list_all(client: ServiceClient, limit: int = 100, **request: object) -> list:  # type: ignore[type-arg]
    runs: list = []  # type: ignore[type-arg]
    token = ""
    pages = 0
    while True:
        req = list_pb2.ListRequest(limit=limit, token=token, **request)  # type: ignore[arg-type]
        resp = client.runs.ListRuns(rs.ListRunsRequest(request=req, project_id=SCOPE))
        assert len(resp.runs) <= min(limit, 100)
        runs.extend(resp.runs)
        pages += 1
        token = resp.token
        if not token:
            return runs
        assert pages < 100


@pytest.fixture(scope="module")
def many_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceClient]:
    """One service for the module's read-only tests, with 250 tiny finished runs: three task
    names, two versions, every fifth one failing."""
    service = LocalService(tmp_path_factory.mktemp("many-runs") / "data")
    client = ServiceClient(service.endpoint)
    try:
        runs = []
        for i in range(TOTAL):
            command = ["false"] if i % 5 == 0 else ["true"]
            task = container_task(command, name=f"tests.task{i % 3}", version=f"v{i % 2}")
            runs.append(client.create(task, name=f"run-{i:03d}"))
        for run in runs:
            assert client.wait(run.action.id, timeout=300).status.phase in (
                P.ACTION_PHASE_SUCCEEDED,
                P.ACTION_PHASE_FAILED,
            )
        yield client
    finally:
        client.close()
        service.stop()


def test_pages_cover_every_run_once(many_runs: ServiceClient) -> None:
    runs = list_all(many_runs, sort_by=list_pb2.Sort(key="created_at", direction=ASC))
    names = [r.action.id.run.name for r in runs]
    assert len(names) == TOTAL and len(set(names)) == TOTAL
    assert names == [f"run-{i:03d}" for i in range(TOTAL)]  # created in this order
    assert all(r.action.status.phase != 0 for r in runs)

    newest_first = list_all(many_runs, limit=37, sort_by=list_pb2.Sort(key="created_at", direction=DESC))
    assert [r.action.id.run.name for r in newest_first] == names[::-1]

    by_name = list_all(many_runs, sort_by=list_pb2.Sort(key="name", direction=DESC))
    assert [r.action.id.run.name for r in by_name] == sorted(names, reverse=True)

    first = many_runs.runs.ListRuns(
        rs.ListRunsRequest(request=list_pb2.ListRequest(limit=500), project_id=SCOPE)
    )
    assert len(first.runs) == 100 and first.token  # capped at 100 a page


def test_filters(many_runs: ServiceClient) -> None:
    def names(*filters: list_pb2.Filter) -> set[str]:
        return {r.action.id.run.name for r in list_all(many_runs, filters=list(filters))}

    failed = names(F(function=F.EQUAL, field="phase", values=[str(P.ACTION_PHASE_FAILED)]))
    assert failed == {f"run-{i:03d}" for i in range(0, TOTAL, 5)}
    both = names(
        F(
            function=F.VALUE_IN,
            field="phase",
            values=[str(P.ACTION_PHASE_FAILED), str(P.ACTION_PHASE_SUCCEEDED)],
        )
    )
    assert len(both) == TOTAL
    task1 = names(F(function=F.EQUAL, field="task_name", values=["tests.task1"]))
    assert task1 == {f"run-{i:03d}" for i in range(1, TOTAL, 3)}
    v0_task1 = names(
        F(function=F.EQUAL, field="task_name", values=["tests.task1"]),
        F(function=F.EQUAL, field="task_version", values=["v0"]),
    )
    assert v0_task1 == {f"run-{i:03d}" for i in range(TOTAL) if i % 3 == 1 and i % 2 == 0}
    mine = names(F(function=F.EQUAL, field="created_by", values=[getpass.getuser()]))
    assert len(mine) == TOTAL
    assert names(F(function=F.EQUAL, field="created_by", values=["someone-else"])) == set()

    other_project = many_runs.runs.ListRuns(
        rs.ListRunsRequest(project_id=ids.ProjectIdentifier(name="other", domain="development"))
    )
    assert list(other_project.runs) == [] and other_project.token == ""


@pytest.mark.parametrize(
    "request_",
    [
        list_pb2.ListRequest(filters=[F(function=F.EQUAL, field="colour", values=["red"])]),
        list_pb2.ListRequest(filters=[F(function=F.GREATER_THAN, field="phase", values=["1"])]),
        list_pb2.ListRequest(filters=[F(function=F.EQUAL, field="phase", values=["bogus"])]),
        list_pb2.ListRequest(sort_by=list_pb2.Sort(key="colour")),
        list_pb2.ListRequest(token="not-a-token"),
    ],
)
def test_bad_list_requests(client: ServiceClient, request_: list_pb2.ListRequest) -> None:
    with pytest.raises(grpc.RpcError) as err:
        client.runs.ListRuns(rs.ListRunsRequest(request=request_, project_id=SCOPE))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _names_and_phases(response: rs.WatchRunsResponse) -> list[tuple[str, int]]:
    return [(r.action.id.run.name, r.action.status.phase) for r in response.runs]


def _until_succeeded(stream: Iterator[rs.WatchRunsResponse], name: str) -> list[tuple[str, int]]:
    """What the watch sends until it shows ``name`` SUCCEEDED."""
    seen: list[tuple[str, int]] = []
    for response in stream:
        seen += _names_and_phases(response)
        if (name, P.ACTION_PHASE_SUCCEEDED) in seen:
            return seen
    raise AssertionError(f"the watch ended before {name} succeeded: {seen}")


def test_watch_runs_starts_with_a_snapshot_then_sends_changes(client: ServiceClient) -> None:
    # No run in scope: the snapshot is one empty message, and once it is here the watch is live.
    early = client.runs.WatchRuns(rs.WatchRunsRequest(project_id=SCOPE), timeout=60)
    assert _names_and_phases(next(early)) == []
    client.create(python_task("pass"), name="elsewhere", project="other")
    before = client.create(python_task("pass"), name="before")
    assert client.wait(before.action.id).status.phase == P.ACTION_PHASE_SUCCEEDED
    seen = _until_succeeded(early, "before")
    assert {name for name, _ in seen} == {"before"}
    early.cancel()

    # A watch that starts after the run ended still learns about it, from its snapshot.
    late = client.runs.WatchRuns(rs.WatchRunsRequest(project_id=SCOPE), timeout=60)
    assert _names_and_phases(next(late)) == [("before", P.ACTION_PHASE_SUCCEEDED)]
    client.create(python_task("pass"), name="watched")
    seen = _until_succeeded(late, "watched")
    assert {name for name, _ in seen} == {"watched"}, "after the snapshot, only runs that change"
    phases = [phase for _, phase in seen]
    assert phases == sorted(phases), "each change is sent in order"
    late.cancel()


def test_watch_runs_snapshot_covers_the_scope_in_batches(many_runs: ServiceClient) -> None:
    cases = [
        (rs.WatchRunsRequest(project_id=SCOPE), {f"run-{i:03d}" for i in range(TOTAL)}),
        (
            rs.WatchRunsRequest(task_id=task_definition_pb2.TaskIdentifier(name="tests.task1", version="v0")),
            {f"run-{i:03d}" for i in range(TOTAL) if i % 3 == 1 and i % 2 == 0},
        ),
    ]
    for request, expected in cases:
        stream = many_runs.runs.WatchRuns(request, timeout=60)
        names: list[str] = []
        sizes: list[int] = []
        for response in stream:
            sizes.append(len(response.runs))
            names += [r.action.id.run.name for r in response.runs]
            if len(names) >= len(expected):
                break
        stream.cancel()
        assert sorted(names) == sorted(expected), "every run in scope once, and no other"
        assert max(sizes) <= 100 and len(sizes) >= len(expected) / 100
