"""The Run API against the real embedded service over loopback gRPC."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import json
import os
import subprocess
import sys
import textwrap

import pytest
from run_support import add, package_client, sleepy  # noqa: F401 (a fixture)

import flyte_run_widget as frw
from flyte_run_widget.errors import RunFailedError, RunNotFoundError


def explode(message: str) -> None:
    print("about to fail")
    raise ValueError(message)


def chatty(n: int) -> int:
    out = sys.stdout
    for i in range(n):
        out.write(f"line {i}\n")
    return n


def test_success_every_member_sync(client):
    r = frw.run(add, a=40)
    assert r.name and r.phase in {"queued", "initializing", "running", "succeeded"}
    assert isinstance(r.raw_phase, int) and r.raw_phase in {1, 3, 4, 5}
    r.wait(quiet=True)
    assert r.phase == "succeeded" and r.done() and r.raw_phase == 5
    assert r.outputs()[0] == 42 and r.outputs().named == {"o0": 42}
    assert r.inputs() == {"a": 40, "b": 2}
    d = r.details()
    assert d.name == r.name and d.done() and d.action_details.attempts == 1
    assert r.url == f"http://{client.endpoint}/v2/domain/development/project/proj/runs/{r.name}"
    assert r.to_dict()["action"]["id"]["run"]["name"] == r.name
    assert json.loads(r.to_json())["action"]["status"]["phase"] == "ACTION_PHASE_SUCCEEDED"
    assert r.sync() is r
    got = frw.Run.get(r.name)
    assert got.name == r.name and got.phase == "succeeded"
    assert r.name in [x.name for x in frw.Run.listall()]


def test_success_every_member_aio(client):
    async def main():
        r = await frw.run.aio(add, a=1, b=1)
        phases = [d.phase async for d in r.watch.aio()]
        assert phases[-1] == "succeeded"
        await r.wait.aio(quiet=True)
        assert (await r.outputs.aio())[0] == 2
        assert await r.inputs.aio() == {"a": 1, "b": 1}
        assert (await r.details.aio()).done()
        assert (await r.sync.aio()) is r
        got = await frw.Run.get.aio(r.name)
        assert got.phase == "succeeded"
        names = [x.name async for x in frw.Run.listall.aio(in_phase=["succeeded"])]
        assert r.name in names
        await r.show_logs.aio(raw=True)
        await r.abort.aio()  # already finished: a warning, not an error

    with pytest.warns(UserWarning, match="already finished"):
        asyncio.run(main())


def test_sync_calls_work_inside_a_running_loop(client):
    async def cell():
        # a notebook cell: a loop is running, and the sync form must still work
        r = frw.run(add, a=2)
        r.wait(quiet=True)
        return r.outputs()[0]

    assert asyncio.run(cell()) == 4


def test_failure_carries_the_error(client, capsys):
    r = frw.run(explode, message="bad things")
    r.wait()
    assert r.phase == "failed"
    err = r.details().action_details.error_info
    assert err is not None and "bad things" in err.message and err.code == "ValueError"
    assert "bad things" in capsys.readouterr().out
    with pytest.raises(RunFailedError, match="bad things"):
        r.outputs()
    r.show_logs(raw=True)
    assert "about to fail" in capsys.readouterr().out


def test_abort_running_task(client):
    r = frw.run(sleepy, seconds=60)
    r.wait(quiet=True, wait_for="running")
    assert r.phase == "running"
    r.abort(reason="enough")
    r.wait(quiet=True)
    assert r.phase == "aborted"
    assert r.details().action_details.abort_info.reason == "enough"


def test_timeout(client):
    t = frw.task(sleepy, timeout=1.0)
    r = frw.run(t, seconds=30)
    r.wait(quiet=True)
    assert r.phase == "timed_out"


def test_logs_100k_lines_complete_and_in_order(client, capsys):
    r = frw.run(chatty, n=100_000)
    r.wait(quiet=True)
    capsys.readouterr()
    r.show_logs(raw=True, filter_system=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"line {i}" for i in range(100_000)]


def test_show_logs_panel_and_timestamps(client, capsys):
    r = frw.run(add, a=5)
    r.wait(quiet=True)
    capsys.readouterr()
    r.show_logs(raw=True, show_ts=True, filter_system=True)
    (line,) = capsys.readouterr().out.splitlines()
    stamp, text = line.split(" ", 1)
    assert text == "adding 5 and 2"
    assert dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).year >= 2024
    r.show_logs(max_lines=5)
    assert "adding 5 and 2" in capsys.readouterr().out


def test_listall_filters_and_pages(client):
    ok = [frw.run(add, a=i) for i in range(5)]
    bad = [frw.run(explode, message="x") for _ in range(2)]
    for r in ok + bad:
        r.wait(quiet=True)
    assert len(list(frw.Run.listall(limit=3))) == 3
    all_runs = list(frw.Run.listall(limit=1000))
    assert {r.name for r in ok + bad} <= {r.name for r in all_runs}
    failed = {r.name for r in frw.Run.listall(in_phase=["failed"])}
    assert failed == {r.name for r in bad}
    both = {r.name for r in frw.Run.listall(in_phase=["failed", "succeeded"])}
    assert both == {r.name for r in ok + bad}
    by_task = {r.name for r in frw.Run.listall(task_name=frw.Task(explode).name)}
    assert by_task == {r.name for r in bad}
    newest_first = [r.name for r in frw.Run.listall(sort_by=("created_at", "desc"))]
    assert newest_first[0] == bad[-1].name


def test_listall_follows_pages_past_100(client, monkeypatch):
    run_mod = importlib.import_module("flyte_run_widget.remote.action_base")

    monkeypatch.setattr(run_mod, "PAGE_SIZE", 2)
    runs = [frw.run(add, a=i) for i in range(5)]
    names = [r.name for r in frw.Run.listall(limit=5)]
    assert names == [r.name for r in runs]


def test_unknown_run_name(client):
    with pytest.raises(RunNotFoundError, match="nosuchrun"):
        frw.Run.get("nosuchrun")


def test_restart_loses_nothing(client, capsys):
    r = frw.run(chatty, n=500)
    r.wait(quiet=True)
    before = r.to_dict()
    client.restart()
    frw.init(client.endpoint, project="proj", domain="development")
    again = frw.Run.get(r.name)
    assert again.to_dict()["action"]["status"] == before["action"]["status"]
    capsys.readouterr()
    again.show_logs(raw=True, filter_system=True)
    assert capsys.readouterr().out.splitlines() == [f"line {i}" for i in range(500)]
    assert again.outputs()[0] == 500


NOTEBOOK_SCRIPT = textwrap.dedent(
    """
    import flyte_run_widget as frw
    frw.init({endpoint!r}, project="proj", domain="development")

    SCALE = 7
    def scaled(x):  # defined in __main__, like a notebook cell
        return [x * SCALE, {{"k": "v"}}]

    r = frw.run(scaled, x=6)
    r.wait(quiet=True)
    print("RESULT", r.phase, r.outputs()[0])
    """
)


def test_function_defined_in_main_runs_as_task(client):
    script = NOTEBOOK_SCRIPT.format(endpoint=client.endpoint)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=os.environ
    )
    assert out.returncode == 0, out.stderr
    assert "RESULT succeeded [42, {'k': 'v'}]" in out.stdout
