"""Following a run's state through dropped connections, against the real service behind a TCP
proxy that cuts or refuses connections on demand: where a follow ends, when it gives up, how it
backs off, and the errors that name the run (docs/mutation.md lists the mutants these kill)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.common import phase_pb2
from follow_support import (
    UNREACHABLE,
    client_for,
    counter,
    fast_backoff,
    proxy,
    raw,
    run_async,
    svc,
)

from flyte_run_widget.client import streams as _follow
from flyte_run_widget.client.rpc import Client
from flyte_run_widget.client.streams import follow_action, follow_logs
from flyte_run_widget.errors import (
    InvalidArgumentError,
    LogsNotAvailableError,
    NotFoundError,
    ServiceUnavailableError,
)

P = phase_pb2

# The fixtures imported from follow_support: pytest finds them here by name.
__all__ = ["fast_backoff", "proxy", "raw", "svc"]

# -- follow_action -----------------------------------------------------------------------------


def test_follow_action_ends_at_the_final_phase_without_a_reconnect(svc, raw):
    run = raw.create(counter(3, 0.05))
    states: list[tuple[str, str]] = []

    async def main() -> list[int]:
        client = client_for(svc.endpoint)
        try:
            stream = follow_action(client, run.action.id, lambda s, w: states.append((s, w)))
            return [int(d.status.phase) async for d in stream]
        finally:
            await client.close()

    phases = run_async(main())
    assert phases[-1] == P.ACTION_PHASE_SUCCEEDED
    assert all(p not in (5, 6, 7, 8) for p in phases[:-1]), "nothing after the final phase"
    assert states == [], "a stream that never dropped reports no connection change"


def test_follow_action_resumes_after_a_cut(svc, raw, proxy, tmp_path):
    gate = tmp_path / "gate"
    run = raw.create(counter(4, 0.0, gate))
    states: list[tuple[str, str]] = []

    def on_connection(state: str, why: str) -> None:
        states.append((state, why))
        if state == "connected":
            gate.touch()  # the run goes on once the stream is back: more states follow

    async def main() -> list[int]:
        client = client_for(proxy.endpoint)
        phases: list[int] = []
        try:
            async for details in follow_action(client, run.action.id, on_connection, patience=2):
                phases.append(int(details.status.phase))
                if details.status.phase == P.ACTION_PHASE_RUNNING and not states:
                    proxy.cut()
            return phases
        finally:
            await client.close()

    phases = run_async(main())
    assert phases[-1] == P.ACTION_PHASE_SUCCEEDED and P.ACTION_PHASE_RUNNING in phases
    assert [s for s, _ in states] == ["reconnecting", "connected"]
    assert states[0][1].startswith(UNREACHABLE) and states[1][1] == ""


def test_follow_action_with_patience_one_gives_up_at_the_first_drop(svc, raw, proxy, tmp_path):
    gate = tmp_path / "gate"
    run = raw.create(counter(4, 0.0, gate))
    states: list[str] = []

    async def main() -> None:
        client = client_for(proxy.endpoint)
        try:
            async for details in follow_action(
                client, run.action.id, lambda s, _: states.append(s), patience=1
            ):
                if details.status.phase == P.ACTION_PHASE_RUNNING:
                    proxy.cut()
        finally:
            await client.close()
            gate.touch()

    with pytest.raises(ServiceUnavailableError):
        run_async(main())
    assert states == ["reconnecting"]


def test_follow_action_without_patience_outlasts_an_outage(svc, raw, proxy, tmp_path, fast_backoff):
    gate = tmp_path / "gate"
    run = raw.create(counter(4, 0.0, gate))
    states: list[tuple[str, str]] = []

    def on_connection(state: str, why: str) -> None:
        states.append((state, why))
        if sum(s == "reconnecting" for s, _ in states) == 3:
            proxy.refusing.clear()  # the service is back after the third failed reconnect
            gate.touch()

    async def main() -> int:
        client = client_for(proxy.endpoint)
        last = 0
        try:
            async for details in follow_action(client, run.action.id, on_connection, patience=None):
                last = int(details.status.phase)
                if last == P.ACTION_PHASE_RUNNING and not states:
                    proxy.refusing.set()
                    proxy.cut()
            return last
        finally:
            await client.close()

    assert run_async(main()) == P.ACTION_PHASE_SUCCEEDED
    assert [s for s, _ in states] == ["reconnecting"] * 3 + ["connected"]
    assert all(why.startswith(UNREACHABLE) for _, why in states[:3]) and states[3][1] == ""


# -- the backoff -------------------------------------------------------------------------------


def test_backoff_doubles_up_to_its_cap_and_resets_on_success(fast_backoff):
    async def main() -> None:
        backoff = _follow._Backoff("a test stream", patience=5)
        delays = [backoff.delay]
        for _ in range(4):
            await backoff.fail(ServiceUnavailableError("down"))
            delays.append(backoff.delay)
        error = ServiceUnavailableError("still down")
        with pytest.raises(ServiceUnavailableError) as info:
            await backoff.fail(error)  # the fifth failure in a row
        assert info.value is error
        assert delays == [0.001, 0.002, 0.004, 0.006, 0.006]
        backoff.ok()
        assert backoff.delay == 0.001
        for _ in range(4):  # ok() started the count again: four more failures are allowed
            await backoff.fail(ServiceUnavailableError("down"))
        forever = _follow._Backoff("a test stream", patience=None)
        for _ in range(6):
            await forever.fail(ServiceUnavailableError("down"))
        assert forever.failures == 6

    run_async(main(), timeout=30)


def test_cancelling_an_action_follow_ends_it(svc, raw, tmp_path):
    gate = tmp_path / "gate"
    run = raw.create(counter(4, 0.0, gate))

    async def main() -> None:
        client = client_for(svc.endpoint)
        running = asyncio.Event()

        async def follow() -> None:
            async for details in follow_action(client, run.action.id):
                if details.status.phase == P.ACTION_PHASE_RUNNING:
                    running.set()

        task = asyncio.create_task(follow())
        try:
            await running.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
        finally:
            gate.touch()
            await client.close()

    run_async(main(), timeout=60)


def test_a_run_that_does_not_exist_is_named_in_the_error(svc):
    missing = ids.ActionIdentifier(
        run=ids.RunIdentifier(project="proj", domain="development", name="no-such-run"), name="a0"
    )

    async def main(follow: Callable[[Client], AsyncIterator[object]]) -> None:
        client = client_for(svc.endpoint)
        try:
            async for _ in follow(client):
                pass
        finally:
            await client.close()

    for follow in (
        lambda c: follow_action(c, missing),
        lambda c: follow_logs(c, missing, 1),  # waiting for its logs asks whether it finished
    ):
        with pytest.raises(NotFoundError, match=r"^run 'no-such-run' was not found at 127\.0\.0\.1:"):
            run_async(main(follow), timeout=30)
    with pytest.raises(
        LogsNotAvailableError, match=r"^logs of run 'no-such-run' attempt 1 are not available: "
    ):
        run_async(main(lambda c: follow_logs(c, missing, 1, wait_for_logs=False)), timeout=30)


def test_a_rejected_request_is_named_in_the_error(svc):
    nameless = ids.ActionIdentifier(run=ids.RunIdentifier(project="proj", domain="development"), name="a0")

    async def main(follow: Callable[[Client], AsyncIterator[object]]) -> None:
        client = client_for(svc.endpoint)
        try:
            async for _ in follow(client):
                pass
        finally:
            await client.close()

    with pytest.raises(InvalidArgumentError) as info:
        run_async(main(lambda c: follow_action(c, nameless)), timeout=30)
    assert str(info.value) == "the service rejected run '': the run identifier has no name"
    with pytest.raises(InvalidArgumentError) as info:
        run_async(main(lambda c: follow_logs(c, nameless, 1)), timeout=30)
    assert str(info.value) == "the service rejected logs of run '' attempt 1: the run identifier has no name"
