"""The Action API (``flyte.remote.Action``'s mirror) against the real embedded service."""

from __future__ import annotations

import asyncio

import pytest
from run_support import add, package_client, sleepy  # noqa: F401 (a fixture)

import flyte_run_widget as frw
from flyte_run_widget.errors import ArgumentValueError, NotFoundError, RunFailedError


def explode(message: str) -> None:
    raise ValueError(message)


def test_root_action_every_member_sync(client, capsys):
    r = frw.run(add, a=40)
    r.wait(quiet=True)
    (root,) = list(r.actions())
    assert isinstance(root, frw.Action)
    assert root.name == "a0" and root.run_name == r.name
    assert root.parent is None and root.parent_name is None and root.group is None
    assert root.phase == "succeeded" and root.raw_phase == 5 and root.done()
    assert root.attempts == 1 and root.task_name
    assert root.outputs()[0] == 42 and root.inputs() == {"a": 40, "b": 2}
    d = root.details()
    assert d.action_name == "a0" and d.done() and d.attempts == 1
    assert root.sync() is root
    got = frw.Action.get(r.name, "a0")
    assert got.name == "a0" and got.phase == "succeeded" and got.attempts == 1
    assert [a.name for a in frw.Action.listall(r.name)] == ["a0"]
    root.show_logs(raw=True)
    assert "adding 40 and 2" in capsys.readouterr().out
    assert "a0" in repr(root) and r.name in repr(root)


def test_every_member_aio(client):
    async def main():
        r = await frw.run.aio(add, a=1, b=1)
        root = await frw.Action.get.aio(r.name)
        phases = [d.phase async for d in root.watch.aio()]
        assert phases[-1] == "succeeded"
        await root.wait.aio(quiet=True)
        assert (await root.outputs.aio())[0] == 2
        assert await root.inputs.aio() == {"a": 1, "b": 1}
        assert [a.name async for a in r.actions.aio()] == ["a0"]
        assert [a.name async for a in frw.Action.listall.aio(r.name, limit=1)] == ["a0"]

    asyncio.run(main())


def test_failed_action_raises_with_its_error(client):
    r = frw.run(explode, message="boom here")
    r.wait(quiet=True)
    root = frw.Action.get(r.name, "a0")
    with pytest.raises(RunFailedError, match="boom here") as info:
        root.outputs()
    assert f"action 'a0' of run {r.name!r} failed" in str(info.value)
    assert info.value.phase == "failed"


def test_abort_an_action(client):
    r = frw.run(sleepy, seconds=60)
    r.wait(quiet=True, wait_for="running")
    root = frw.Action.get(r.name, "a0")
    root.abort(reason="enough")
    assert root.phase == "aborted"
    assert frw.Run.get(r.name).phase == "aborted"


def test_unknown_action_and_bad_limit(client):
    r = frw.run(add, a=1)
    with pytest.raises(NotFoundError, match="action 'a99' of run"):
        frw.Action.get(r.name, "a99")
    with pytest.raises(ArgumentValueError, match="limit must be 1 or more"):
        list(frw.Action.listall(r.name, limit=0))
