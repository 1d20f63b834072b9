"""Mistakes a user can make with the Python API get an error of ``flyte_run_widget.errors`` that
says what fits, warnings point at the user's line, and ``show_logs`` does what its arguments say."""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from conftest import LocalService
from run_support import package_client  # noqa: F401 (a fixture)

import flyte_run_widget as frw
from flyte_run_widget import errors
from flyte_run_widget.client import loop as _loop
from flyte_run_widget.client.rpc import get_client
from flyte_run_widget.client.streams import follow_logs
from flyte_run_widget.errors import ConfigError, FlyteRunWidgetError


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    svc = LocalService(tmp_path_factory.mktemp("api") / "data")
    try:
        yield svc
    finally:
        svc.stop()


def add(a: int, b: int = 2) -> int:
    return a + b


def sleepy(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


def counting(n: int) -> int:
    for i in range(n):
        print(f"line {i}")
    return n


def one_long_line(size: int) -> None:
    sys.stdout.write("x" * size + "\n")
    sys.stdout.write("after\n")


@pytest.fixture(scope="module")
def finished(service: LocalService) -> frw.Run:
    frw.init(service.endpoint, project="proj", domain="development")
    run = frw.run(counting, n=50)
    run.wait(quiet=True)
    assert run.phase == "succeeded"
    return run


# -- warnings point at the caller ----------------------------------------------------------


def test_abort_of_a_finished_run_warns_at_the_callers_line(client, finished):
    with pytest.warns(UserWarning, match="already finished") as caught:
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        finished.abort()
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)


def test_abort_aio_of_a_finished_run_warns_at_the_callers_line(client, finished):
    async def main() -> tuple[str, int, int]:
        with pytest.warns(UserWarning, match="already finished") as caught:
            line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
            await finished.abort.aio()
        return caught[0].filename, caught[0].lineno, line

    filename, lineno, line = asyncio.run(main())
    assert (filename, lineno) == (__file__, line)


# -- init ----------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["project", "domain"])
@pytest.mark.parametrize("value", ["", "  "])
def test_init_refuses_an_empty_project_or_domain(field, value):
    with pytest.raises(ConfigError, match=f"{field} is empty") as info:
        frw.init("localhost:8090", **{field: value})
    assert f"{field}=" in str(info.value) and "leave it out" in str(info.value)


# -- show_logs -----------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [0, -1])
def test_show_logs_attempts_count_from_1(client, finished, attempt, capsys):
    with pytest.raises(errors.ArgumentValueError, match="attempts count from 1") as info:
        finished.show_logs(attempt=attempt)
    assert isinstance(info.value, ValueError)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("max_lines", [0, -5])
@pytest.mark.parametrize("raw", [False, True])
def test_show_logs_max_lines_is_at_least_1(client, finished, max_lines, raw, capsys):
    with pytest.raises(errors.ArgumentValueError, match="max_lines must be 1 or more"):
        finished.show_logs(max_lines=max_lines, raw=raw)
    assert capsys.readouterr().out == ""


def test_show_logs_raw_keeps_the_last_max_lines(client, finished, capsys):
    finished.show_logs(raw=True, max_lines=5, filter_system=True)
    assert capsys.readouterr().out == "".join(f"line {i}\n" for i in range(45, 50))
    finished.show_logs(raw=True, max_lines=500, filter_system=True)
    assert capsys.readouterr().out == "".join(f"line {i}\n" for i in range(50))


def counting_then_waiting(n: int, release: str) -> None:
    import os

    for i in range(n):
        print(f"line {i}", flush=True)
    while not os.path.exists(release):
        time.sleep(0.05)
    print("late", flush=True)


async def _line_logged(run: frw.Run, message: str) -> None:
    logs = follow_logs(run.client, run.action_id, 1)
    try:
        async for batch in logs:
            if any(ln.message == message for ln in batch):
                return
    finally:
        await logs.aclose()


def test_show_logs_raw_on_a_running_run_is_tail_then_follow(client, tmp_path, capsys):
    """The last max_lines of the log so far, then every new line (``tail -n 5 -f``)."""
    release = tmp_path / "release"
    run = frw.run(counting_then_waiting, n=30, release=str(release))
    try:
        run.wait(quiet=True, wait_for="running")
        _loop.run_sync(asyncio.wait_for(_line_logged(run, "line 29\n"), 60))
        shown: list[str] = []
        follower = threading.Thread(
            target=lambda: run.show_logs(raw=True, max_lines=5, filter_system=True), daemon=True
        )
        follower.start()
        deadline = time.monotonic() + 60
        while "line 29\n" not in "".join(shown) and time.monotonic() < deadline:
            shown.append(capsys.readouterr().out)
            time.sleep(0.05)
        release.touch()
        follower.join(60)
        assert not follower.is_alive()
        shown.append(capsys.readouterr().out)
        assert "".join(shown) == "".join(f"line {i}\n" for i in range(25, 30)) + "late\n"
    finally:
        release.touch()


def test_show_logs_raw_keeps_a_long_line_whole(client, capsys):
    size = 5 * 1024 * 1024
    run = frw.run(one_long_line, size=size)
    run.wait(quiet=True)
    capsys.readouterr()
    run.show_logs(raw=True, filter_system=True)
    assert capsys.readouterr().out.split("\n") == ["x" * size, "after", ""]


# -- errors a user can cause come from flyte_run_widget.errors ------------------------------


def test_outputs_of_a_run_still_running(client):
    run = frw.run(sleepy, seconds=120)
    try:
        run.wait(quiet=True, wait_for="running")
        expected = r"still running; call run.wait\(\) first"
        with pytest.raises(errors.RunNotFinishedError, match=expected) as info:
            run.outputs()
        assert isinstance(info.value, RuntimeError)
    finally:
        run.abort()


@pytest.mark.parametrize(
    ("call", "kind", "builtin"),
    [
        (lambda: list(frw.Run.listall(sort_by=("created_at", "up"))), errors.ArgumentValueError, ValueError),
        (lambda: list(frw.Run.listall(in_phase=["resting"])), errors.ArgumentValueError, ValueError),
        (lambda: frw.task(42), errors.ArgumentTypeError, TypeError),
        (lambda: frw.task(add, retries=-1), errors.ArgumentValueError, ValueError),
        (lambda: frw.run(add, c=1), errors.ArgumentTypeError, TypeError),
    ],
)
def test_argument_mistakes(client, call, kind, builtin):
    with pytest.raises(kind) as info:
        call()
    assert isinstance(info.value, builtin) and isinstance(info.value, FlyteRunWidgetError)


def test_wait_for_must_be_terminal_or_running(client, finished):
    with pytest.raises(errors.ArgumentValueError, match="wait_for"):
        finished.wait(wait_for="done")


def _transport_code(e: BaseException) -> str | None:
    """The status of the transport's own error kept in the chain of causes (grpcio's over gRPC,
    connectrpc's over Connect); None when the chain lost it."""
    from connectrpc.errors import ConnectError

    while e.__cause__ is not None:
        e = e.__cause__
        if isinstance(e, grpc.aio.AioRpcError):
            return e.code().name
        if isinstance(e, ConnectError):
            return e.code.name
    return None


def test_service_errors_keep_the_transport_error_as_cause(client):
    with pytest.raises(errors.RunNotFoundError) as info:
        frw.Run.get("no-such-run")
    assert _transport_code(info.value) == "NOT_FOUND"
    with pytest.raises(errors.InvalidArgumentError) as info2:
        list(frw.Run.listall(sort_by=("no_such_field", "asc")))
    assert _transport_code(info2.value) == "INVALID_ARGUMENT"


def test_stream_errors_keep_the_transport_error_as_cause(client):
    from flyteidl2.common import identifier_pb2
    from flyteidl2.workflow import run_service_pb2

    run_id = identifier_pb2.RunIdentifier(project="proj", domain="development", name="no-such-run")
    request = run_service_pb2.WatchActionDetailsRequest(
        action_id=identifier_pb2.ActionIdentifier(run=run_id, name="a0")
    )

    async def watch() -> None:
        async for _ in get_client().stream("WatchActionDetails", request):
            pass

    with pytest.raises(errors.NotFoundError) as info:
        _loop.run_sync(watch())
    assert _transport_code(info.value) == "NOT_FOUND"
