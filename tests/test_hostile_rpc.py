"""Adversarial requests to every implemented RPC (property-based, with hypothesis).

Whatever arrives — random field values, names with ``../`` or separators, NUL, very long
strings, huge limits, bad page tokens, random filters and sorts, bytes that are not the
request at all — the service answers with an explicit status code (never UNKNOWN, never an
unhandled failure), stays alive, never sends a response over 4 MiB, and never creates or
reads anything outside its data folder.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from conftest import LocalService, ServiceClient, python_task
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.common import list_pb2
from flyteidl2.core import identifier_pb2, literals_pb2, tasks_pb2
from flyteidl2.task import common_pb2, run_pb2, task_definition_pb2
from flyteidl2.workflow import run_logs_service_pb2 as rl
from flyteidl2.workflow import run_service_pb2 as rs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flyte_run_widget.server.faults import ServiceFault
from flyte_run_widget.server.paths import Layout

MAX_RESPONSE = 4 * 1024 * 1024
RUNS = "/flyteidl2.workflow.RunService/"
LOGS = "/flyteidl2.workflow.RunLogsService/"

# Codes a handler may answer on purpose. INTERNAL is explicit too, but here it would mean a
# handler failed on input it should have rejected, so it is not allowed.
EXPLICIT = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNIMPLEMENTED,
}
# What the client itself ends a stream with when it stops reading.
CLIENT_SIDE = {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


class World:
    """One service for the module, with a few real runs for requests to hit."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"
        self.service = LocalService(self.data)
        self.client = ServiceClient(self.service.endpoint)
        # Raw bytes in and out: response sizes are measured on the wire, and the receive limit
        # is lifted so that an oversized response is seen (and failed on) rather than refused.
        self.channel = grpc.insecure_channel(
            self.service.endpoint, options=[("grpc.max_receive_message_length", 256 * 1024 * 1024)]
        )
        done = self.client.create(python_task("print('hello'); print('<b>x</b>')"), name="done-run")
        self.client.wait(done.action.id)
        self.client.create(python_task("import time; time.sleep(600)"), name="long-run")
        self.names = ["done-run", "long-run"]

    def alive(self) -> None:
        proc = self.service.proc
        assert proc is not None and proc.poll() is None, "the Run service process died"

    def close(self) -> None:
        self.channel.close()
        self.client.close()
        self.service.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("hostile-rpc"))
    try:
        yield w
    finally:
        w.close()
    check_data_folder(w)


def check_data_folder(w: World) -> None:
    """Nothing outside the data folder; inside, only names the service itself allows."""
    outside = sorted(p.name for p in w.base.iterdir() if p.name != "data")
    assert outside == [], f"files created next to the data folder: {outside}"
    root = w.data.resolve()
    for dirpath, dirnames, filenames in os.walk(w.data):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            assert not path.is_symlink(), path
            assert path.resolve().is_relative_to(root), path
    runs = w.data / "runs"
    for run_dir in runs.iterdir() if runs.exists() else []:
        assert re.fullmatch(r"[a-z0-9_-]{1,63}", run_dir.name), run_dir
        for action_dir in run_dir.iterdir():
            assert re.fullmatch(r"[a-z0-9_-]{1,63}", action_dir.name), action_dir


# -- calling -----------------------------------------------------------------------------------


def _code(e: grpc.RpcError) -> grpc.StatusCode:
    return e.code()  # type: ignore[attr-defined,no-any-return]


def call_unary(w: World, path: str, data: bytes) -> tuple[grpc.StatusCode, bytes]:
    fn = w.channel.unary_unary(path, request_serializer=None, response_deserializer=None)
    try:
        resp = fn(data, timeout=20)
    except grpc.RpcError as e:
        return _code(e), b""
    return grpc.StatusCode.OK, resp


def call_stream(
    w: World, path: str, data: bytes, max_messages: int = 3
) -> tuple[grpc.StatusCode, list[bytes]]:
    """Read a few messages (a watch may never end), then cancel."""
    fn = w.channel.unary_stream(path, request_serializer=None, response_deserializer=None)
    call = fn(data, timeout=2)
    got: list[bytes] = []
    try:
        for item in call:
            got.append(item)
            if len(got) >= max_messages:
                break
    except grpc.RpcError as e:
        return _code(e), got
    finally:
        call.cancel()
    return grpc.StatusCode.OK, got


def check(w: World, path: str, data: bytes, stream: bool, allowed: set[grpc.StatusCode] = EXPLICIT) -> None:
    if stream:
        code, messages = call_stream(w, path, data)
        allowed = allowed | CLIENT_SIDE
    else:
        code, resp = call_unary(w, path, data)
        messages = [resp]
    assert code in allowed, f"{path} answered {code}"
    for m in messages:
        assert len(m) <= MAX_RESPONSE, f"{path} sent a {len(m)}-byte response"
    w.alive()


# -- strategies ----------------------------------------------------------------------------------

HOSTILE_NAMES = [
    "../x",
    "../../etc/passwd",
    "..",
    ".",
    "a/b",
    "/abs",
    "a\\b",
    "..\\..\\x",
    "\x00",
    "a\x00b",
    "%2e%2e%2f",
    "a0/../../x",
    "A0",
    "a0",
    "x" * 64,
    "x" * 100_000,
    "run\n",
    " run",
    "\uff52\uff55\uff4e",
    "<script>alert(1)</script>",
]


def texts(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=max_size), st.sampled_from(HOSTILE_NAMES))


def names() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["done-run", "long-run", "ghost"]), texts())


def run_ids() -> st.SearchStrategy[ids.RunIdentifier]:
    return st.builds(
        ids.RunIdentifier,
        org=st.one_of(st.just(""), texts()),
        project=st.one_of(st.sampled_from(["", "proj"]), texts()),
        domain=st.one_of(st.sampled_from(["", "development"]), texts()),
        name=names(),
    )


def action_ids() -> st.SearchStrategy[ids.ActionIdentifier]:
    return st.builds(
        ids.ActionIdentifier, run=run_ids(), name=st.one_of(st.sampled_from(["", "a0"]), texts())
    )


ENUM = st.one_of(st.integers(0, 12), st.integers(-(2**31), 2**31 - 1))


def list_requests() -> st.SearchStrategy[list_pb2.ListRequest]:
    tokens = st.one_of(
        st.sampled_from(
            ["", "0", "1", "a", "-1", "-ff", "0x10", "ffffffffffffffffffffffff", "9" * 400, "1e9"]
        ),
        st.text(max_size=30),
        st.integers(0, 2**70).map(lambda n: format(n, "x")),
    )
    fields = st.one_of(
        st.sampled_from(
            ["phase", "task_name", "task_version", "created_by", "name", "r.name; DROP TABLE runs", ""]
        ),
        st.text(max_size=20),
    )
    values = st.lists(
        st.one_of(st.sampled_from(["4", "RUNNING", "-1", "99999999999999999999999", "x'", "%"]), texts(20)),
        max_size=5,
    )
    filters = st.lists(st.builds(list_pb2.Filter, function=ENUM, field=fields, values=values), max_size=4)
    sort_keys = st.one_of(
        st.sampled_from(["", "created_at", "name", "phase", "name; --", "r.name DESC, (SELECT 1)"]), texts(20)
    )
    sorts = st.builds(list_pb2.Sort, key=sort_keys, direction=ENUM)
    return st.builds(
        list_pb2.ListRequest,
        limit=st.one_of(st.integers(0, 200), st.just(2**32 - 1)),
        token=tokens,
        sort_by=st.one_of(st.none(), sorts),
        filters=filters,
        sort_by_fields=st.lists(sorts, max_size=2),
    )


def list_runs_requests() -> st.SearchStrategy[rs.ListRunsRequest]:
    project = st.builds(ids.ProjectIdentifier, organization=texts(), domain=texts(), name=texts())
    task_id = st.builds(
        task_definition_pb2.TaskIdentifier,
        org=texts(),
        project=texts(),
        domain=texts(),
        name=texts(),
        version=texts(),
    )
    scope = st.one_of(
        st.just({}),
        st.builds(lambda o: {"org": o}, texts()),
        st.builds(lambda p: {"project_id": p}, project),
        st.builds(lambda t: {"task_id": t}, task_id),
        st.builds(lambda n: {"trigger_name": ids.TriggerName(name=n)}, texts()),
    )
    return st.builds(lambda r, s: rs.ListRunsRequest(request=r, **s), list_requests(), scope)


def watch_runs_requests() -> st.SearchStrategy[rs.WatchRunsRequest]:
    task_id = st.builds(task_definition_pb2.TaskIdentifier, name=texts(), version=texts())
    project = st.builds(ids.ProjectIdentifier, organization=texts(), domain=texts(), name=texts())
    target = st.one_of(
        st.just({}),
        st.builds(lambda o: {"org": o}, texts()),
        st.builds(lambda c: {"cluster_id": ids.ClusterIdentifier(name=c)}, texts()),
        st.builds(lambda p: {"project_id": p}, project),
        st.builds(lambda t: {"task_id": t}, task_id),
    )
    return target.map(lambda kw: rs.WatchRunsRequest(**kw))


def task_specs() -> st.SearchStrategy[task_definition_pb2.TaskSpec]:
    """Container tasks whose command is harmless (this interpreter running ``pass``, or a
    program that does not exist); everything else is random."""
    command = st.one_of(
        st.just([sys.executable, "-c", "pass"]),
        st.builds(lambda n: [f"/nonexistent/{n}"], texts(20)),
        st.just([]),
    )
    args = st.lists(
        st.one_of(
            st.sampled_from(["{{.Outputs}}", "{{.Inputs}}", "{{.runName}}", "{{.unknown}}", "../x"]),
            texts(20),
        ),
        max_size=4,
    )
    env = st.lists(st.builds(literals_pb2.KeyValuePair, key=texts(20), value=texts(20)), max_size=3)
    container = st.builds(tasks_pb2.Container, image=texts(20), command=command, args=args, env=env)
    template = st.builds(
        tasks_pb2.TaskTemplate,
        id=st.builds(identifier_pb2.Identifier, name=texts(), version=texts()),
        type=texts(20),
        container=st.one_of(st.none(), container),
    )
    return st.builds(task_definition_pb2.TaskSpec, task_template=template, short_name=texts(20))


def create_requests() -> st.SearchStrategy[rs.CreateRunRequest]:
    labels = st.dictionaries(texts(20), texts(40), max_size=4)
    inputs = st.builds(
        common_pb2.Inputs,
        literals=st.lists(
            st.builds(
                common_pb2.NamedLiteral,
                name=texts(20),
                value=st.builds(
                    literals_pb2.Literal,
                    scalar=st.builds(
                        literals_pb2.Scalar,
                        primitive=st.builds(literals_pb2.Primitive, string_value=texts(40)),
                    ),
                ),
            ),
            max_size=3,
        ),
    )
    ident = st.one_of(
        st.builds(lambda r: {"run_id": r}, run_ids()),
        st.builds(
            lambda p: {"project_id": p},
            st.builds(ids.ProjectIdentifier, organization=texts(), domain=texts(), name=texts()),
        ),
        st.just({}),
    )
    task = st.one_of(
        st.builds(lambda t: {"task_spec": t}, task_specs()),
        st.builds(lambda n: {"task_id": task_definition_pb2.TaskIdentifier(name=n)}, texts()),
        st.just({}),
    )
    return st.builds(
        lambda i, t, lab, inp, src: rs.CreateRunRequest(
            **i, **t, inputs=inp, run_spec=run_pb2.RunSpec(labels=run_pb2.Labels(values=lab)), source=src
        ),
        ident,
        task,
        labels,
        inputs,
        ENUM,
    )


# -- one property per RPC ----------------------------------------------------------------------------


@SETTINGS
@given(request=create_requests())
def test_create_run(world: World, request: rs.CreateRunRequest) -> None:
    check(world, RUNS + "CreateRun", request.SerializeToString(), stream=False)


@SETTINGS
@given(run_id=run_ids(), reason=st.one_of(st.none(), texts(200)))
def test_abort_run(world: World, run_id: ids.RunIdentifier, reason: str | None) -> None:
    request = rs.AbortRunRequest(run_id=run_id)
    if reason is not None:
        request.reason = reason
    check(world, RUNS + "AbortRun", request.SerializeToString(), stream=False)


@SETTINGS
@given(action_id=action_ids(), reason=texts(200))
def test_abort_action(world: World, action_id: ids.ActionIdentifier, reason: str) -> None:
    request = rs.AbortActionRequest(action_id=action_id, reason=reason)
    check(world, RUNS + "AbortAction", request.SerializeToString(), stream=False)


@SETTINGS
@given(run_id=run_ids())
def test_get_run_details(world: World, run_id: ids.RunIdentifier) -> None:
    check(
        world,
        RUNS + "GetRunDetails",
        rs.GetRunDetailsRequest(run_id=run_id).SerializeToString(),
        stream=False,
    )


@SETTINGS
@given(action_id=action_ids())
def test_get_action_details_and_data(world: World, action_id: ids.ActionIdentifier) -> None:
    data = rs.GetActionDetailsRequest(action_id=action_id).SerializeToString()
    check(world, RUNS + "GetActionDetails", data, stream=False)
    data = rs.GetActionDataRequest(action_id=action_id).SerializeToString()
    check(world, RUNS + "GetActionData", data, stream=False)


@SETTINGS
@given(request=list_runs_requests())
def test_list_runs(world: World, request: rs.ListRunsRequest) -> None:
    check(world, RUNS + "ListRuns", request.SerializeToString(), stream=False)


@SETTINGS
@given(run_id=run_ids(), request=list_requests())
def test_list_actions(world: World, run_id: ids.RunIdentifier, request: list_pb2.ListRequest) -> None:
    data = rs.ListActionsRequest(run_id=run_id, request=request).SerializeToString()
    check(world, RUNS + "ListActions", data, stream=False)


@settings(SETTINGS, max_examples=40)
@given(run_id=run_ids())
def test_watch_run_details_and_actions(world: World, run_id: ids.RunIdentifier) -> None:
    check(
        world,
        RUNS + "WatchRunDetails",
        rs.WatchRunDetailsRequest(run_id=run_id).SerializeToString(),
        stream=True,
    )
    data = rs.WatchActionsRequest(run_id=run_id).SerializeToString()
    check(world, RUNS + "WatchActions", data, stream=True)


@settings(SETTINGS, max_examples=40)
@given(action_id=action_ids())
def test_watch_action_details(world: World, action_id: ids.ActionIdentifier) -> None:
    data = rs.WatchActionDetailsRequest(action_id=action_id).SerializeToString()
    check(world, RUNS + "WatchActionDetails", data, stream=True)


@settings(SETTINGS, max_examples=15)
@given(request=watch_runs_requests())
def test_watch_runs(world: World, request: rs.WatchRunsRequest) -> None:
    check(world, RUNS + "WatchRuns", request.SerializeToString(), stream=True)


@settings(SETTINGS, max_examples=60)
@given(action_id=action_ids(), attempt=st.one_of(st.integers(0, 3), st.integers(0, 2**32 - 1)))
def test_tail_logs(world: World, action_id: ids.ActionIdentifier, attempt: int) -> None:
    data = rl.TailLogsRequest(action_id=action_id, attempt=attempt).SerializeToString()
    check(world, LOGS + "TailLogs", data, stream=True)


UNARY = ["CreateRun", "AbortRun", "GetRunDetails", "GetActionDetails", "GetActionData", "ListRuns",
         "ListActions", "AbortAction"]  # fmt: skip
STREAMS = ["WatchRunDetails", "WatchActionDetails", "WatchRuns", "WatchActions"]
UNIMPLEMENTED = [
    "WatchClusterEvents",
    "SignalEvent",
    "WatchGroups",
    "GetActionDataURIs",
    "GetActionLogContext",
]


def rpc_paths() -> st.SearchStrategy[tuple[str, bool]]:
    return st.one_of(
        st.sampled_from([(RUNS + n, False) for n in UNARY]),
        st.sampled_from([(RUNS + n, True) for n in STREAMS] + [(LOGS + "TailLogs", True)]),
    )


RANDOM_BYTES = st.one_of(
    st.binary(max_size=300), st.sampled_from([b"\xff" * 64, b"\x0a\xff\xff\xff\xff\x0f"])
)


@settings(SETTINGS, max_examples=200)
@given(target=rpc_paths(), data=RANDOM_BYTES)
def test_random_bytes(world: World, target: tuple[str, bool], data: bytes) -> None:
    """Bytes that may not parse as the request at all: the answer is still explicit."""
    path, stream = target
    if path.endswith("CreateRun"):
        # Random bytes that happen to parse as a runnable CreateRun would start a random command.
        try:
            req = rs.CreateRunRequest.FromString(data)
        except Exception:
            req = None
        if req is not None and req.task_spec.task_template.HasField("container"):
            return
    check(world, path, data, stream)


@pytest.mark.parametrize("name", UNIMPLEMENTED)
def test_unimplemented_rpcs_say_so(world: World, name: str) -> None:
    path = RUNS + name
    method = rs.DESCRIPTOR.services_by_name["RunService"].methods_by_name[name]
    stream = method.server_streaming
    check(world, path, b"", stream, allowed={grpc.StatusCode.UNIMPLEMENTED})


# -- specific cases, each a defect found (or ruled out) here ------------------------------------------


def _status(w: World, path: str, message: Any) -> grpc.StatusCode:
    code, _ = call_unary(w, path, message.SerializeToString())
    return code


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "a\\b", "a\x00b", "x" * 64, "Run"])
def test_create_run_rejects_names_that_are_not_plain(world: World, name: str) -> None:
    request = rs.CreateRunRequest(
        run_id=ids.RunIdentifier(project="proj", domain="development", name=name),
        task_spec=python_task("pass"),
    )
    assert _status(world, RUNS + "CreateRun", request) == grpc.StatusCode.INVALID_ARGUMENT
    world.alive()


def test_huge_page_token_is_invalid_not_internal(world: World) -> None:
    """Regression: a token past SQLite's 64-bit range failed the handler (INTERNAL)."""
    request = rs.ListRunsRequest(request=list_pb2.ListRequest(token="f" * 40))
    assert _status(world, RUNS + "ListRuns", request) == grpc.StatusCode.INVALID_ARGUMENT
    world.alive()


def test_every_implemented_rpc_is_covered() -> None:
    from flyte_run_widget.server.service import _IMPLEMENTED

    assert set(UNARY + STREAMS) == _IMPLEMENTED


INVALID_UTF8_LOG = (
    "import sys; out = sys.stdout.buffer\nfor _ in range(12): out.write(b'\\xff' * 262144 + b'\\n')"
)


def tail_sizes(w: World, name: str) -> list[int]:
    client = w.client
    run = client.create(python_task(INVALID_UTF8_LOG), name=name)
    client.wait(run.action.id, timeout=60)
    code, messages = call_stream(
        w, LOGS + "TailLogs", rl.TailLogsRequest(action_id=run.action.id).SerializeToString(), 1000
    )
    assert code == grpc.StatusCode.OK
    lines = sum(len(g.lines) for m in messages for g in rl.TailLogsResponse.FromString(m).logs)
    assert lines >= 12
    return [len(m) for m in messages]


def test_tail_logs_of_invalid_utf8_stays_under_4_mib(world: World) -> None:
    assert max(tail_sizes(world, "bad-utf8")) <= MAX_RESPONSE


@pytest.mark.parametrize("bad", ["../escape", "..", "a/b", "a\\b", "/etc", "a\x00b", "../../../../tmp/x"])
def test_names_that_are_paths_never_reach_the_data_folder(world: World, bad: str) -> None:
    """A run or action name that is a path is refused by every RPC that reads or writes a run
    (never OK), for a finished and a running run, and nothing appears on disk."""
    refused = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
    cases = [(bad, "a0")] + [(name, bad) for name in world.names]
    for run, action in cases:
        run_id = ids.RunIdentifier(project="proj", domain="development", name=run)
        action_id = ids.ActionIdentifier(run=run_id, name=action)
        unary = [
            (RUNS + "GetActionDetails", rs.GetActionDetailsRequest(action_id=action_id)),
            (RUNS + "GetActionData", rs.GetActionDataRequest(action_id=action_id)),
            (RUNS + "AbortAction", rs.AbortActionRequest(action_id=action_id, reason="x")),
        ]
        streams = [
            (RUNS + "WatchActionDetails", rs.WatchActionDetailsRequest(action_id=action_id)),
            (LOGS + "TailLogs", rl.TailLogsRequest(action_id=action_id, attempt=1)),
        ]
        if run == bad:
            unary += [
                (RUNS + "GetRunDetails", rs.GetRunDetailsRequest(run_id=run_id)),
                (RUNS + "AbortRun", rs.AbortRunRequest(run_id=run_id)),
                (RUNS + "ListActions", rs.ListActionsRequest(run_id=run_id)),
            ]
            streams += [
                (RUNS + "WatchRunDetails", rs.WatchRunDetailsRequest(run_id=run_id)),
                (RUNS + "WatchActions", rs.WatchActionsRequest(run_id=run_id)),
            ]
        for path, message in unary:
            code = _status(world, path, message)
            assert code in refused, (path, run, action, code)
        for path, message in streams:
            code, _ = call_stream(world, path, message.SerializeToString())
            assert code in refused, (path, run, action, code)
    check_data_folder(world)
    world.alive()


@pytest.mark.parametrize("bad", ["../escape", "..", "a/b", "a\\b", "/etc", "a\x00b", "", "."])
def test_the_data_folder_layout_refuses_path_names(tmp_path: Path, bad: str) -> None:
    """Every file path the service builds goes through Layout, which takes plain names only."""
    layout = Layout(tmp_path)
    for run, action in ((bad, "a0"), ("r1", bad)):
        with pytest.raises(ServiceFault) as info:
            layout.action_dir(run, action)
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(tmp_path.iterdir()) == []
