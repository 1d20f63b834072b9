"""Host detection and the text transport's packing (notebook/host.py), without a kernel."""

from __future__ import annotations

import base64
import json
import sys
import types

import pytest

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
