"""The widget's Abort and Wait clicks beyond tests/test_widget.py: a click read on the kernel's
shell-channel thread while the main thread blocks in ``run.wait()``, the abort-once guard, an
abort that fails and is tried again, and the log replays a view asks for (docs/mutation.md lists
the mutants these kill)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import comm
import pytest
from conftest import FixedPortService, LocalService
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.workflow import run_definition_pb2 as rd
from ipykernel.comm.comm import BaseComm as KernelComm
from mutation_support import stopped_on_sigxcpu
from run_support import wait_until

import flyte_run_widget as frw
from flyte_run_widget.notebook.batches import AttemptLog
from flyte_run_widget.notebook.widget import RunWidget
from flyte_run_widget.remote.log_lines import Columns, decode_batch


def gated(gate: str) -> str:
    """Prints a line, then runs until the file ``gate`` exists (two minutes at most)."""
    print("waiting for the gate", flush=True)
    deadline = time.monotonic() + 120
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)
    return "through"


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    service = LocalService(tmp_path_factory.mktemp("widget") / "data")
    try:
        with stopped_on_sigxcpu(service):
            yield service
    finally:
        service.stop()


@pytest.fixture
def kernel_comms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Widgets get the comm ipykernel 7 gives them in a kernel (ipykernel.ipkernel._create_comm)."""
    monkeypatch.setattr(comm, "create_comm", KernelComm)


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "gate"
    try:
        yield path
    finally:
        path.touch()  # no task outlives its test


def running_widget(svc: LocalService, gate: Path) -> tuple[frw.Run, RunWidget]:
    frw.init(svc.endpoint, project="proj", domain="development")
    r = frw.run(gated, gate=str(gate))
    w = r.widget()
    assert wait_until(lambda: w.phase == "running"), w.phase
    return r, w


def changes(w: RunWidget, name: str) -> list[object]:
    seen: list[object] = []
    w.observe(lambda change: seen.append(change["new"]), names=name)
    return seen


def click(w: RunWidget, content: object, default: str = "shell-subshell") -> object:
    """What ipykernel 7's shell-channel thread does with a comm message: ask the comm where to
    route it. Runs on a thread of its own, as there."""
    routed: list[object] = []
    data = {"method": "custom", "content": content}
    thread = threading.Thread(target=lambda: routed.append(w.comm._reply_subshell_for(data, default)))
    thread.start()
    thread.join(10)
    assert routed, "routing the message did not return"
    return routed[0]


# -- clicks read early, while the main thread blocks -------------------------------------------


def test_abort_clicked_while_a_cell_blocks_in_wait(svc, gate, kernel_comms):
    r, w = running_widget(svc, gate)
    busy = changes(w, "busy")
    routes: list[object] = []

    def clicker_main() -> None:
        routes.append(click(w, {"type": "abort", "reason": "stop it"}))
        if not wait_until(lambda: w.busy == "aborting" or w.phase == "aborted", timeout=15):
            gate.touch()  # the click was not acted on: let the run end, so the test fails, not hangs

    clicker = threading.Thread(target=clicker_main)
    clicker.start()  # the main thread is in r.wait() below, as a blocked cell's would be
    try:
        r.wait(quiet=True)
    finally:
        clicker.join(30)
    assert routes == ["shell-subshell"], "the message is still routed where ipykernel meant it to go"
    assert r.phase == "aborted"
    assert wait_until(lambda: w.phase == "aborted" and w.busy == "")
    assert w.error == {"kind": "ABORTED", "code": "", "message": "stop it"}
    assert "aborting" in busy and w.notice == ""
    # the same message later takes its normal path: handling it again changes nothing
    w._on_frontend_msg(w, {"type": "abort", "reason": "stop it"}, [])
    w.close()


def test_wait_clicked_early_shows_waiting_until_the_end(svc, gate, kernel_comms):
    _r, w = running_widget(svc, gate)
    assert click(w, {"type": "wait"}) == "shell-subshell"
    assert wait_until(lambda: w.busy == "waiting")
    gate.touch()
    assert wait_until(lambda: w.phase == "succeeded" and w.busy == "")
    assert w.error == {}
    w.close()


def test_other_messages_wait_for_their_normal_path(svc, gate, kernel_comms):
    _r, w = running_widget(svc, gate)
    busy = changes(w, "busy")
    sent: list[dict] = []
    w.send = lambda content, buffers=None: sent.append(content)
    assert wait_until(lambda: 1 in w._logs and w._logs[1].sent > 0), "the first line went out"
    sent.clear()
    for data in (
        {"method": "custom", "content": {"type": "logs_request", "attempt": 1, "from": 0}},
        {"method": "update", "state": {"busy": "aborting"}},
        {"method": "custom", "content": "abort"},
        {"method": "custom"},
        None,
        "abort",
    ):
        assert w.comm._reply_subshell_for(data, "default") == "default"
    # the loop has run everything handed to it before this returns
    frw_loop_roundtrip()
    assert busy == [] and sent == [] and w.phase == "running"
    gate.touch()
    assert wait_until(lambda: w.phase == "succeeded")
    w.close()


def frw_loop_roundtrip() -> None:
    from flyte_run_widget.client import loop as _loop

    async def nothing() -> None:
        return None

    _loop.submit(nothing()).result(10)


# -- the abort-once guard and a failed abort -----------------------------------------------------


def test_two_clicks_abort_once_with_the_first_reason(svc, gate):
    r, w = running_widget(svc, gate)
    busy = changes(w, "busy")
    w._on_frontend_msg(w, {"type": "abort"}, [])
    w._on_frontend_msg(w, {"type": "abort", "reason": "second click"}, [])
    assert wait_until(lambda: w.phase == "aborted" and w.busy == "")
    assert w.error["message"] == "Aborted from the notebook widget"
    assert busy[0] == "aborting" and busy[-1] == "" and w.notice == ""
    assert frw.Run.get(r.name).phase == "aborted"
    w.close()


def test_an_empty_reason_is_the_default_one(svc, gate):
    _r, w = running_widget(svc, gate)
    w._on_frontend_msg(w, {"type": "abort", "reason": ""}, [])
    assert wait_until(lambda: w.phase == "aborted")
    assert w.error["message"] == "Aborted from the notebook widget"
    w.close()


def test_abort_and_wait_on_a_finished_run_do_nothing(svc, gate):
    r, w = running_widget(svc, gate)
    gate.touch()
    assert wait_until(lambda: w.phase == "succeeded" and r.done())
    busy = changes(w, "busy")
    w._on_frontend_msg(w, {"type": "abort", "reason": "too late"}, [])
    w._on_frontend_msg(w, {"type": "wait"}, [])
    frw_loop_roundtrip()
    frw_loop_roundtrip()  # and whatever the first round scheduled
    assert busy == [] and w.notice == "" and not w._aborted
    assert frw.Run.get(r.name).phase == "succeeded"
    w.close()


def test_a_failed_abort_says_why_and_can_be_clicked_again(fixed_service: FixedPortService, gate):
    frw.init(fixed_service.endpoint, project="proj", domain="development")
    r = frw.run(gated, gate=str(gate))
    w = r.widget()
    with stopped_on_sigxcpu(fixed_service):
        _failed_abort_then_retry(fixed_service, r, w)


def _failed_abort_then_retry(fixed_service: FixedPortService, r: frw.Run, w: RunWidget) -> None:
    try:
        assert wait_until(lambda: w.phase == "running"), w.phase
        fixed_service.kill()
        w._on_frontend_msg(w, {"type": "abort", "reason": "first try"}, [])
        assert wait_until(lambda: w.notice != "", timeout=60)
        assert w.notice.startswith("abort failed: cannot reach the Flyte Run service at ")
        assert w.busy == "" and w.phase == "running"
        fixed_service.start()
        w._on_frontend_msg(w, {"type": "abort", "reason": "second try"}, [])
        assert wait_until(lambda: w.phase == "aborted", timeout=60)
        assert w.error["message"] == "second try" and w.busy == ""
    finally:
        w.close()


# -- log replays a view asks for -------------------------------------------------------------------


@pytest.fixture
def idle_widget() -> Iterator[tuple[RunWidget, list[dict]]]:
    """A widget of a running run that follows nothing; its log is fed by the test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    frw.init(f"localhost:{port}")  # never contacted
    run_id = ids.RunIdentifier(project="p", domain="d", name="r1")
    action = rd.Action(id=ids.ActionIdentifier(run=run_id, name="a0"), status=rd.ActionStatus(phase=4))
    w = RunWidget(frw.Run(rd.Run(action=action)), follow=False)
    sent: list[dict] = []
    w.send = lambda content, buffers=None: sent.append(
        {**content, "texts": [t for _, _, t in decode_batch(content["count"], buffers)]}
    )
    log = AttemptLog(capacity=100)
    log.add(Columns([f"l{i}" for i in range(5)], [float(i) for i in range(5)], [1] * 5))
    w._logs[1] = log
    w._flush()
    sent.clear()
    try:
        yield w, sent
    finally:
        w.close()


def test_a_view_gets_the_lines_it_asks_for(idle_widget):
    w, sent = idle_widget
    w._on_frontend_msg(w, {"type": "logs_request", "attempt": 1, "from": 3}, [])
    assert wait_until(lambda: len(sent) == 1)
    assert (sent[0]["attempt"], sent[0]["first"], sent[0]["texts"], sent[0]["done"]) == (
        1,
        3,
        ["l3", "l4"],
        False,
    )
    sent.clear()
    w._handle({"type": "logs_request", "attempt": 1})  # no "from": from the first held line
    assert [(m["attempt"], m["first"], m["texts"]) for m in sent] == [(1, 0, ["l0", "l1", "l2", "l3", "l4"])]


def test_requests_a_view_should_not_send_are_ignored(idle_widget):
    w, sent = idle_widget
    for content in (
        {"type": "logs_request", "attempt": 2, "from": 0},  # no such attempt
        {"type": "logs_request", "attempt": "1", "from": 0},
        {"type": "logs_request", "attempt": 1, "from": "0"},
        {"type": "logs_request", "attempt": 1, "from": 5},  # it has everything already
        {"type": "unknown"},
    ):
        w._handle(content)
    w._on_frontend_msg(w, ["logs_request", 1, 0], [])  # not a dict: dropped
    frw_loop_roundtrip()
    assert sent == []


def test_after_the_end_a_view_is_told_again_that_the_log_is_complete(idle_widget):
    w, sent = idle_widget
    w._logs[1].done = True
    w._flush()
    sent.clear()
    w._handle({"type": "logs_request", "attempt": 1, "from": 5})
    assert [(m["attempt"], m["first"], m["count"], m["done"]) for m in sent] == [(1, 5, 0, True)]
