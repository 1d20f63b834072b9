"""The log batch wire format, pinned: the kernel must produce exactly the bytes of
tests/fixtures/log_batch.bin from the lines in tests/fixtures/log_batch.json, and
js/test/golden.test.js decodes the same bytes with the shipped decoder into the same lines.

To change the format on purpose: change encode_batch and batch.js together, then
``python tests/test_batch_golden.py`` rewrites the .bin (and the sizes in the .json) from the lines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flyteidl2.common import identifier_pb2
from flyteidl2.logs.dataplane import payload_pb2
from flyteidl2.workflow import run_definition_pb2

from flyte_run_widget.client.config import build_config
from flyte_run_widget.client.rpc import Client
from flyte_run_widget.notebook.batches import AttemptLog
from flyte_run_widget.notebook.widget import RunWidget
from flyte_run_widget.remote.log_lines import decode_batch, encode_batch, to_columns
from flyte_run_widget.remote.run import Run

FIXTURES = Path(__file__).parent / "fixtures"
JSON = FIXTURES / "log_batch.json"
BIN = FIXTURES / "log_batch.bin"


def _golden() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(JSON.read_text(encoding="utf-8"))
    return doc


def _log_lines(lines: list[dict[str, Any]]) -> list[payload_pb2.LogLine]:
    """The lines as TailLogs delivers them: with their newline, a Timestamp and an originator."""
    out = []
    for line in lines:
        pb = payload_pb2.LogLine(message=line["text"] + "\n", originator=line["origin"])
        if line["ts"]:
            pb.timestamp.FromMilliseconds(line["ts"])
        out.append(pb)
    return out


def _buffers(doc: dict[str, Any]) -> list[bytes]:
    data, parts = BIN.read_bytes(), []
    assert len(data) == sum(doc["buffer_sizes"]), "log_batch.bin does not match the sizes in log_batch.json"
    for size in doc["buffer_sizes"]:
        parts.append(data[:size])
        data = data[size:]
    return parts


def test_the_encoder_produces_the_golden_bytes() -> None:
    doc = _golden()
    lines = doc["lines"]
    cols = to_columns(_log_lines(lines))
    assert cols.texts == [x["text"] for x in lines]
    assert cols.stamps == [x["ts"] for x in lines] and cols.origins == [x["origin"] for x in lines]
    assert encode_batch(cols) == _buffers(doc)


def test_the_widget_sends_the_golden_message() -> None:
    """What reaches the view, through the widget's own path: its buffer, the cut into messages
    and the send, with nothing between."""
    doc = _golden()
    action = identifier_pb2.ActionIdentifier(
        run=identifier_pb2.RunIdentifier(project="proj", domain="development", name="golden"), name="a0"
    )
    pb2 = run_definition_pb2.Run(action=run_definition_pb2.Action(id=action))
    client = Client(build_config("127.0.0.1:1", project="proj", domain="development"))
    w = RunWidget(Run(pb2, _client=client), follow=False)
    sent: list[tuple[dict[str, Any], list[bytes]]] = []
    w.send = lambda content, buffers=None: sent.append((content, buffers))  # type: ignore[method-assign]
    log = w._logs[1] = AttemptLog(100)
    log.add(to_columns(_log_lines(doc["lines"])))
    log.done = True
    w._flush()
    w.close()
    assert sent == [(doc["message"], _buffers(doc))]


def test_the_golden_bytes_decode_to_the_lines() -> None:
    doc = _golden()
    got = decode_batch(doc["message"]["count"], _buffers(doc))
    assert got == [(x["ts"], x["origin"], x["text"]) for x in doc["lines"]]


def _write() -> None:
    """Rewrite log_batch.bin and its sizes from the lines in log_batch.json."""
    doc = _golden()
    buffers = encode_batch(to_columns(_log_lines(doc["lines"])))
    BIN.write_bytes(b"".join(buffers))
    doc["buffer_sizes"] = [len(b) for b in buffers]
    doc["message"]["count"] = len(doc["lines"])
    JSON.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    _write()
