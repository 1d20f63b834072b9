"""Host detection and the text transport's packing (notebook/host.py), without a kernel."""

from __future__ import annotations

import base64
import json
import sys
import types

import pytest

from flyte_run_widget.client import loop as _loop
from flyte_run_widget.notebook import host
from flyte_run_widget.remote.log_lines import Columns, decode_batch, encode_batch


def test_colab_is_detected_and_gets_the_text_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(host.ENV, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert host.detect_host() in ("jupyter", "marimo")
    assert host.transport_for(host.detect_host()) == "binary"
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert host.detect_host() == "colab"
    assert host.transport_for("colab") == "text"


def test_the_environment_overrides_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(host.ENV, " TEXT ")
    assert host.transport_for("jupyter") == "text"
    monkeypatch.setenv(host.ENV, "binary")
    assert host.transport_for("colab") == "binary"
    monkeypatch.setenv(host.ENV, "carrier-pigeon")  # not a transport: the host decides
    assert host.transport_for("colab") == "text"


def test_pack_keeps_order_and_bytes() -> None:
    cols = Columns(["café 😀", "<b>x</b>", ""], [1.5, 2.0, 3.0], [1, 2, 0])
    buffers = encode_batch(cols)
    msg = {"type": "logs", "attempt": 1, "first": 0, "count": 3}
    box = json.loads(host.pack([(msg, buffers), ({"type": "tree"}, [])], seq=7, idle=False))
    assert box["seq"] == 7 and box["idle"] is False
    assert [item["msg"] for item in box["items"]] == [msg, {"type": "tree"}]
    back = [base64.b64decode(b) for b in box["items"][0]["b64"]]
    assert back == [bytes(b) for b in buffers]
    assert [line[2] for line in decode_batch(3, back)] == cols.texts


class _Sent:
    """What ipywidgets' Widget would send: recorded instead."""

    def __init__(self) -> None:
        self.states: list[object] = []
        self.messages: list[object] = []

    def send_state(self, key: object = None) -> None:
        self.states.append(key)

    def send(self, content: object, buffers: object = None) -> None:
        self.messages.append(content)


class _Widget(host.TextOutbox, _Sent):
    keys = ["phase", "busy"]

    def __init__(self, transport: str, idle: bool = False) -> None:
        _Sent.__init__(self)
        self.transport = transport
        self.outbox = ""
        self.idle = idle
        self._init_outbox()

    def _outbox_idle(self) -> bool:
        return self.idle


def test_text_transport_holds_back_the_loops_sends_until_a_poll() -> None:
    w = _Widget("text", idle=True)
    _loop.run_sync(_on_loop(lambda: (w.send_state("phase"), w.send({"type": "tree"}))))
    w.send({"type": "logs"}, buffers=[b"x"])  # queued from any thread in the text transport
    assert w.states == [] and w.messages == [] and w.outbox == ""
    w._answer_poll()
    assert w.states == [["phase"]] and w.messages == []
    box = json.loads(w.outbox)
    assert [i["msg"]["type"] for i in box["items"]] == ["tree", "logs"] and box["idle"] is True
    w._answer_poll()  # nothing new: the same idle answer, a new seq
    assert json.loads(w.outbox)["seq"] == box["seq"] + 1 and w.states == [["phase"]]


def test_a_long_backlog_goes_out_over_several_polls() -> None:
    w = _Widget("text", idle=True)
    mb = b"x" * (1024 * 1024)
    for n in range(5):
        w.send({"n": n}, buffers=[mb])
    seen: list[int] = []
    while True:
        w._answer_poll()
        box = json.loads(w.outbox)
        assert len(box["items"]) <= 2
        seen += [i["msg"]["n"] for i in box["items"]]
        if box["idle"]:
            break
    assert seen == [0, 1, 2, 3, 4]


def test_binary_transport_sends_at_once() -> None:
    w = _Widget("binary")
    _loop.run_sync(_on_loop(lambda: (w.send_state("phase"), w.send({"type": "tree"}))))
    assert w.states == ["phase"] and w.messages == [{"type": "tree"}]


async def _on_loop(fn: object) -> None:
    fn()  # type: ignore[operator]
