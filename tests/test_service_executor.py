"""The service's parts in-process: executor edge cases, log files, templates, list queries."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import psutil
import pytest
from conftest import python_task
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.common import list_pb2, phase_pb2
from flyteidl2.task import common_pb2, run_pb2
from flyteidl2.workflow import run_definition_pb2 as rd
from hypothesis import given, settings
from hypothesis import strategies as st

from flyte_run_widget.server import model
from flyte_run_widget.server.executor import Executor
from flyte_run_widget.server.faults import ServiceFault
from flyte_run_widget.server.hub import Hub
from flyte_run_widget.server.listing import build_query
from flyte_run_widget.server.log_files import MAX_LINE_BYTES, LogReader, LogWriter
from flyte_run_widget.server.paths import Layout, check_name
from flyte_run_widget.server.process import TaskProcess
from flyte_run_widget.server.store import Store
from flyte_run_widget.server.templates import render

P = phase_pb2


def _setup(
    tmp_path: Path, code: str = "import time; time.sleep(30)"
) -> tuple[Executor, Store, rd.ActionDetails]:
    layout = Layout(tmp_path)
    store = Store(layout.db)
    executor = Executor(layout, store, Hub(), grace=1.0)
    rid = ids.RunIdentifier(project="p", domain="d", name="rqueued0001")
    details = model.new_action(rid, "a0", python_task(code), model.local_identity(), model.now_ns())
    assert store.insert_run(details, run_pb2.RunSpec(), common_pb2.Inputs(), model.now_ns())
    return executor, store, details


def test_abort_while_queued_never_starts_the_process(tmp_path: Path) -> None:
    async def scenario() -> None:
        executor, store, details = _setup(tmp_path)
        executor.start(details, run_pb2.RunSpec(), b"")
        assert await executor.abort("rqueued0001", "not now")  # before the runner got to run
        row = store.get_run("rqueued0001")
        assert row is not None
        attempt = row.details.attempts[0]
        assert [t.phase for t in attempt.phase_transitions] == [P.ACTION_PHASE_QUEUED, P.ACTION_PHASE_ABORTED]
        assert row.details.abort_info.reason == "not now"
        assert store.process_of("rqueued0001", "a0", 1) == (None, None)
        lines = LogReader(Layout(tmp_path).log_file("rqueued0001", "a0", 1)).read()
        assert [r[2] for r in lines] == [b"aborted: not now"]
        assert not await executor.abort("rqueued0001", "again")  # no longer running here

    asyncio.run(scenario())


def test_abort_while_initializing_stops_the_process_before_the_task_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A process that is slow to start (a big environment, a slow disk) holds the attempt in
    # INITIALIZING; an abort that comes then is kept, and the process is stopped as it starts.
    started = []
    real_start = TaskProcess.start.__func__  # type: ignore[attr-defined]

    async def slow_start(cls, *args, **kwargs):  # type: ignore[no-untyped-def]
        await gate.wait()
        process = await real_start(cls, *args, **kwargs)
        started.append(process.pid)
        return process

    monkeypatch.setattr(TaskProcess, "start", classmethod(slow_start))

    async def scenario() -> None:
        executor, store, details = _setup(tmp_path, "import time; time.sleep(1); print('ran')")
        executor.start(details, run_pb2.RunSpec(), b"")
        async with asyncio.timeout(30):
            while details.status.phase != P.ACTION_PHASE_INITIALIZING:  # held there by the gate
                await asyncio.sleep(0.01)
        aborting = asyncio.create_task(executor.abort("rqueued0001", "changed my mind"))
        async with asyncio.timeout(30):
            while executor._live["rqueued0001"].abort_reason is None:  # the abort is recorded
                await asyncio.sleep(0)
        gate.set()  # the process starts only now, after the abort
        assert await aborting
        row = store.get_run("rqueued0001")
        assert row is not None
        phases = [t.phase for t in row.details.attempts[0].phase_transitions]
        assert phases == [P.ACTION_PHASE_QUEUED, P.ACTION_PHASE_INITIALIZING, P.ACTION_PHASE_ABORTED]
        assert row.details.abort_info.reason == "changed my mind"
        (pid,) = started
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        lines = [r[2] for r in LogReader(Layout(tmp_path).log_file("rqueued0001", "a0", 1)).read()]
        assert b"ran" not in lines and lines[-1] == b"aborted: changed my mind", lines

    gate = asyncio.Event()
    asyncio.run(scenario())


def test_recover_ends_unfinished_runs(tmp_path: Path) -> None:
    executor, store, _ = _setup(tmp_path)
    assert executor.recover() == 1
    row = store.get_run("rqueued0001")
    assert row is not None and row.details.status.phase == P.ACTION_PHASE_FAILED
    assert row.details.error_info.message.startswith("the service restarted while this run was running")
    assert executor.recover() == 0


def test_log_file_keeps_bytes_and_waits_for_half_written_records(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    with LogWriter(path) as writer:
        writer.append(1, 1, b"\xff\xfe raw")
        writer.append(2, 2, b"")
        writer.append(3, 1, b"y" * (MAX_LINE_BYTES + 5))
    reader = LogReader(path)
    data = path.read_bytes()
    path.write_bytes(data[:-3])  # as if the writer were mid-record
    first = reader.read()
    assert [r[2] for r in first[:2]] == [b"\xff\xfe raw", b""]
    assert [len(r[2]) for r in first[2:]] == [MAX_LINE_BYTES]
    path.write_bytes(data)
    assert [r[2] for r in reader.read()] == [b"yyyyy"]
    assert reader.read() == []


_LINE = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=20).map(str.encode),
    st.sampled_from([b"", b"\xff\xfe raw", "caf\u00e9".encode(), b"x" * 16_000, b"y" * (MAX_LINE_BYTES + 3)]),
)


@settings(max_examples=150, deadline=None)
@given(
    chunks=st.lists(
        st.tuples(st.integers(0, 2**62), st.sampled_from([0, 1, 2]), st.lists(_LINE, max_size=8)), max_size=6
    )
)
def test_append_lines_writes_what_append_writes_line_by_line(tmp_path_factory, chunks) -> None:
    folder = tmp_path_factory.mktemp("lines")
    one, many = folder / "one.log", folder / "many.log"
    with LogWriter(one) as a, LogWriter(many) as b:
        for ts, origin, lines in chunks:
            for line in lines:
                a.append(ts, origin, line)
            b.append_lines(ts, origin, lines)
        assert a.lines == b.lines
    assert one.read_bytes() == many.read_bytes()
    records = LogReader(many).read()
    assert b"".join(r[2] for r in records) == b"".join(line for _, _, lines in chunks for line in lines)


def test_templates() -> None:
    values = {"Inputs": "/i.pb", "runName": "r1"}
    assert render(["{{.Inputs}}", "{{ .inputs }}", "x={{  .RunName}}", "{{.Other}}"], values) == [
        "/i.pb",
        "/i.pb",
        "x=r1",
        "{{.Other}}",
    ]


@pytest.mark.parametrize("name", ["../x", "a/b", "", "A", "x" * 64, "a.b", "..", "a\x00"])
def test_names_that_could_escape_the_data_folder_are_refused(name: str) -> None:
    with pytest.raises(ServiceFault):
        check_name(name)
    with pytest.raises(ServiceFault):
        Layout(Path("/nonexistent")).log_file(name, "a0", 1)


def test_list_query_defaults_and_caps() -> None:
    query = build_query(list_pb2.ListRequest(limit=1000), [], [])
    assert query.limit == 100 and query.offset == 0
    assert query.order_by.startswith("r.created_at DESC")
    asc = build_query(list_pb2.ListRequest(sort_by=list_pb2.Sort(key="created_at", direction=1)), [], [])
    assert asc.order_by.startswith("r.created_at ASC")


def test_python_is_this_interpreter() -> None:
    assert python_task("pass").task_template.container.command[0] == sys.executable


_JSONABLE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=_JSONABLE)
def test_the_relays_json_is_what_json_reads_and_writes(value) -> None:
    from flyte_run_widget.server.relay import _json

    text = _json(value)
    assert text.isascii() and json.loads(text) == value
    assert text == json.dumps(value)  # byte for byte what it replaces
