"""Following a run and its log through dropped connections, against the real service behind a
TCP proxy that cuts or refuses connections on demand: where a follow ends, how it resumes (no
line twice, none lost), when it gives up, and how cancellation and a shared channel closed under
a stream are told apart (docs/mutation.md lists the mutants these kill)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from conftest import LocalService, ServiceClient, python_task
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.common import phase_pb2
from flyteidl2.logs.dataplane import payload_pb2
from mutation_support import stopped_on_sigxcpu

from flyte_run_widget import _follow
from flyte_run_widget._follow import follow_action, follow_logs
from flyte_run_widget.client import Client
from flyte_run_widget.config import build_config
from flyte_run_widget.errors import (
    InvalidArgumentError,
    LogsNotAvailableError,
    NotFoundError,
    ServiceUnavailableError,
)

P = phase_pb2

# Prints `n` numbered lines, each once the file argv[3] exists if `gated`, `delay` s apart.
COUNTER = (
    "import os, sys, time\n"
    "n, delay, gate = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]\n"
    "for i in range(n):\n"
    "    print('line', i, flush=True)\n"
    "    if i == n // 2:\n"
    "        deadline = time.monotonic() + 60\n"
    "        while gate and not os.path.exists(gate) and time.monotonic() < deadline:\n"
    "            time.sleep(0.02)\n"
    "    time.sleep(delay)\n"
)


def counter(n: int, delay: float = 0.0, gate: Path | str = "") -> object:
    """A task printing n lines; with a gate, it stops after line n // 2 until the gate exists."""
    return python_task(COUNTER, str(n), str(delay), str(gate))


class Proxy:
    """TCP to the service; ``cut()`` breaks open connections, ``refusing`` makes new ones close
    at once (a service that is away)."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.refusing = threading.Event()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []  # in the order they came
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing.is_set():
                conn.close()
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open |= {conn, upstream}
                self.pairs.append((conn, upstream))
            threading.Thread(target=self._pipe, args=(conn, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, conn), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        self._drop(src, dst)

    def _drop(self, *socks: socket.socket) -> None:
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
            with self._lock:
                self._open.discard(s)

    def cut(self, index: int | None = None) -> None:
        """Break every open connection, or only the ``index``-th one accepted."""
        with self._lock:
            socks = list(self._open) if index is None else list(self.pairs[index])
        self._drop(*socks)

    def close(self) -> None:
        self.listener.close()
        self.cut()


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    service = LocalService(tmp_path_factory.mktemp("follow") / "data")
    try:
        with stopped_on_sigxcpu(service):
            yield service
    finally:
        service.stop()


@pytest.fixture
def raw(svc: LocalService) -> Iterator[ServiceClient]:
    c = ServiceClient(svc.endpoint)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def proxy(svc: LocalService) -> Iterator[Proxy]:
    p = Proxy(svc.endpoint)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_follow, "BACKOFF_START", 0.001)
    monkeypatch.setattr(_follow, "BACKOFF_MAX", 0.006)


def client_for(endpoint: str) -> Client:
    return Client(build_config(endpoint, project="proj", domain="development"))


class CountingClient(Client):
    """The real client, counting the TailLogs subscriptions it opens."""

    tails = 0

    def stream(self, name: str, request: object, *, what: str = "") -> AsyncIterator[object]:
        if name == "TailLogs":
            self.tails += 1
        return super().stream(name, request, what=what)


def user_text(batch: object) -> list[str]:
    return [ln.message.rstrip("\n") for ln in batch if ln.originator == payload_pb2.USER]  # type: ignore[attr-defined]


UNREACHABLE = "cannot reach the Flyte Run service at "


def run_async(coro: object, timeout: float = 90) -> object:
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


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
        backoff = _follow._Backoff(patience=5)
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
        forever = _follow._Backoff(patience=None)
        for _ in range(6):
            await forever.fail(ServiceUnavailableError("down"))
        assert forever.failures == 6

    run_async(main(), timeout=30)


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
