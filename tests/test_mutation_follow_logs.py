"""Following a run's log through dropped connections, against the real service behind a TCP
proxy: resuming by line position (no line twice, none lost), giving up or not, a channel closed
under a stream by another stream's reconnect, cancellation, and attempts that have no log (yet)
(docs/mutation.md lists the mutants these kill)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from conftest import LocalService, ServiceClient, python_task
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.common import phase_pb2
from follow_support import (
    UNREACHABLE,
    CountingClient,
    client_for,
    counter,
    fast_backoff,
    proxy,
    raw,
    run_async,
    svc,
    user_text,
)

from flyte_run_widget.client.config import build_config
from flyte_run_widget.client.streams import follow_action, follow_logs
from flyte_run_widget.errors import (
    LogsNotAvailableError,
    ServiceUnavailableError,
)

P = phase_pb2

# The fixtures imported from follow_support: pytest finds them here by name.
__all__ = ["fast_backoff", "proxy", "raw", "svc"]

# -- follow_logs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(svc: LocalService) -> ids.ActionIdentifier:
    """A finished run that printed line 0 .. line 29."""
    c = ServiceClient(svc.endpoint)
    try:
        run = c.create(counter(30))
        c.wait(run.action.id)
        return run.action.id
    finally:
        c.close()


@pytest.mark.parametrize("start", [None, 0, 1, 2, -1, 0.0, 1000])
def test_follow_logs_from_a_line(svc, finished, start):
    """``start`` counts every stored line (the service's own ones too); -1: the last one, 0.0:
    just past the end."""
    c = ServiceClient(svc.endpoint)
    try:
        everything = [line.message for line in c.log_lines(finished, attempt=1)]
    finally:
        c.close()
    assert len(everything) > 30
    if start == -1:
        start = len(everything) - 1
    elif isinstance(start, float):
        start = len(everything)

    async def main() -> list[str]:
        client = client_for(svc.endpoint)
        try:
            got: list[str] = []
            kwargs = {} if start is None else {"start": start}
            async for batch in follow_logs(client, finished, 1, **kwargs):
                assert len(batch) > 0, "no empty batches"
                got += [line.message for line in batch]
            return got
        finally:
            await client.close()

    assert run_async(main()) == everything[start or 0 :]


def test_follow_logs_resumes_after_cuts_with_no_line_twice(svc, raw, proxy, tmp_path):
    gate = tmp_path / "gate"
    n = 60
    run = raw.create(counter(n, 0.01, gate))
    states: list[tuple[str, str]] = []

    def on_connection(state: str, why: str) -> None:
        states.append((state, why))
        if state == "connected":
            gate.touch()  # the rest of the lines come after the reconnect, a few at a time

    async def main() -> list[str]:
        client = client_for(proxy.endpoint)
        got: list[str] = []
        try:
            async for batch in follow_logs(client, run.action.id, 1, on_connection=on_connection):
                got += user_text(batch)
                if len(got) > n // 2 and not states:
                    proxy.cut()  # the stream resumes in the middle of what is stored
            return got
        finally:
            await client.close()

    assert run_async(main()) == [f"line {i}" for i in range(n)]
    assert [s for s, _ in states] == ["reconnecting", "connected"]
    assert states[0][1].startswith(UNREACHABLE) and states[1][1] == ""


def test_follow_logs_with_patience_one_gives_up_at_the_first_drop(svc, raw, proxy, tmp_path):
    gate = tmp_path / "gate"
    run = raw.create(counter(4, 0.0, gate))
    states: list[str] = []

    async def main() -> None:
        client = client_for(proxy.endpoint)
        try:
            follow = follow_logs(
                client, run.action.id, 1, on_connection=lambda s, _: states.append(s), patience=1
            )
            async for _ in follow:
                proxy.cut()
        finally:
            await client.close()
            gate.touch()

    with pytest.raises(ServiceUnavailableError, match=UNREACHABLE):
        run_async(main())
    assert states == ["reconnecting"]


def test_follow_logs_without_patience_outlasts_an_outage(svc, raw, proxy, tmp_path, fast_backoff):
    gate = tmp_path / "gate"
    n = 20
    run = raw.create(counter(n, 0.0, gate))
    states: list[str] = []

    def on_connection(state: str, why: str) -> None:
        states.append(state)
        if states.count("reconnecting") == 3:
            proxy.refusing.clear()  # the service is back after the third failed reconnect
            gate.touch()

    async def main() -> list[str]:
        client = client_for(proxy.endpoint)
        got: list[str] = []
        try:
            async for batch in follow_logs(
                client, run.action.id, 1, on_connection=on_connection, patience=None
            ):
                got += user_text(batch)
                if not states:
                    proxy.refusing.set()
                    proxy.cut()
            return got
        finally:
            await client.close()

    assert run_async(main()) == [f"line {i}" for i in range(n)]
    assert states == ["reconnecting"] * 3 + ["connected"]


@pytest.mark.parametrize("dropped", ["runs", "logs"])
def test_a_stream_whose_channel_another_one_closed_subscribes_again(svc, raw, proxy, tmp_path, dropped):
    """One client, two connections: the first carries the run's state, the second its log. The
    stream whose connection drops reconnects and so closes the client's channels under the other
    stream, which must subscribe again: not end early, not fail, and not report a drop."""
    gate = tmp_path / "gate"
    n = 40
    run = raw.create(counter(n, 0.01, gate))
    states: dict[str, list[str]] = {"runs": [], "logs": []}

    def notify(stream: str) -> Callable[[str, str], None]:
        def on_connection(state: str, why: str) -> None:
            states[stream].append(state)
            if state == "connected":
                gate.touch()

        return on_connection

    async def main() -> tuple[list[str], int]:
        client = client_for(proxy.endpoint)
        try:
            watching = asyncio.Event()

            async def logs() -> list[str]:
                got: list[str] = []
                await watching.wait()  # the run's state took the first connection
                async for batch in follow_logs(client, run.action.id, 1, on_connection=notify("logs")):
                    got += user_text(batch)
                    if len(got) > n // 2 and not gate.exists() and len(proxy.pairs) == 2:
                        proxy.cut(0 if dropped == "runs" else 1)
                return got

            async def phases() -> int:
                last = 0
                async for details in follow_action(client, run.action.id, notify("runs"), patience=2):
                    watching.set()
                    last = int(details.status.phase)
                return last

            return await asyncio.gather(logs(), phases())  # type: ignore[return-value]
        finally:
            await client.close()

    lines, last = run_async(main())  # type: ignore[misc]
    assert lines == [f"line {i}" for i in range(n)]
    assert last == P.ACTION_PHASE_SUCCEEDED
    other = "logs" if dropped == "runs" else "runs"
    assert states == {dropped: ["reconnecting", "connected"], other: []}


def test_cancelling_a_log_follow_ends_it(svc, raw, tmp_path):
    gate = tmp_path / "gate"
    run = raw.create(counter(4, 0.0, gate))  # waits at its gate: the log stream stays open

    async def main() -> None:
        client = client_for(svc.endpoint)
        first = asyncio.Event()

        async def follow() -> None:
            async for _ in follow_logs(client, run.action.id, 1):
                first.set()

        task = asyncio.create_task(follow())
        try:
            await first.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)  # a TimeoutError here: the cancel was swallowed
        finally:
            gate.touch()
            await client.close()

    run_async(main(), timeout=60)


def test_logs_of_an_attempt_that_never_ran(svc, finished):
    async def main(wait_for_logs: bool) -> LogsNotAvailableError:
        client = client_for(svc.endpoint)
        try:
            with pytest.raises(LogsNotAvailableError) as info:
                async for _ in follow_logs(client, finished, 2, wait_for_logs=wait_for_logs):
                    pass
            return info.value
        finally:
            await client.close()

    for wait in (False, True):  # waiting ends too: the run is finished, attempt 2 never comes
        error = run_async(main(wait), timeout=30)
        assert isinstance(error, LogsNotAvailableError)
        name = finished.run.name
        assert str(error) == (
            f"logs of run {name!r} attempt 2 are not available: "
            f"run {name!r} has no attempt 2 (yet): it has 1 attempt(s)"
        )
        assert (
            error.code == "NOT_FOUND"
            and error.details == f"run {name!r} has no attempt 2 (yet): it has 1 attempt(s)"
        )
        assert error.__cause__ is None


def test_logs_of_an_attempt_not_started_yet_are_waited_for(svc, raw, tmp_path):
    """Attempt 2 of a task with a retry exists only once attempt 1 failed."""
    gate = tmp_path / "gate"
    code = (
        "import os, sys, time\n"
        f"gate = {str(gate)!r}\n"
        "if not os.path.exists(gate + '.first'):\n"
        "    open(gate + '.first', 'w').close()\n"
        "    deadline = time.monotonic() + 60\n"
        "    while not os.path.exists(gate) and time.monotonic() < deadline:\n"
        "        time.sleep(0.02)\n"
        "    sys.exit('first attempt fails')\n"
        "print('second attempt', flush=True)\n"
    )
    run = raw.create(python_task(code, retries=1))
    counting = CountingClient(build_config(svc.endpoint, project="proj", domain="development"))

    async def main() -> list[str]:
        client = counting
        try:
            got: list[str] = []
            follow = follow_logs(counting, run.action.id, 2)
            first = asyncio.ensure_future(follow.__anext__())
            while counting.tails < 2:  # asked twice while attempt 2 did not exist yet
                await asyncio.wait([first], timeout=0.05)
                assert not first.done(), "attempt 2 existed before the first one failed"
            gate.touch()
            got += user_text(await first)
            async for batch in follow:
                got += user_text(batch)
            return got
        finally:
            await client.close()

    assert run_async(main(), timeout=60) == ["second attempt"]
