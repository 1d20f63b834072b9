"""The runs table's wire format, pinned: the kernel encodes the rows of tests/fixtures/run_rows.json
into exactly its message and buffers, and js/test/runs_table.test.js decodes those same bytes
with the shipped decoder into the same rows.

To change the format on purpose: change encode_rows and js/src/run_rows.js together, then
``python tests/test_rows_golden.py`` rewrites the message and buffers from the rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flyte_run_widget.common.phase import raw_phase
from flyte_run_widget.notebook.run_rows import Row, encode_rows

FIXTURE = Path(__file__).parent / "fixtures" / "run_rows.json"


def _encode(doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    rows = [
        Row(r["name"], r["task"], "mod." + r["task"], r["user"], raw_phase(r["phase"]), r["start"], r["end"])
        for r in doc["rows"]
    ]
    [(content, buffers)] = list(encode_rows(rows, doc["drop"]))
    return content, [b.hex() for b in buffers]


def test_the_kernel_encodes_the_golden_rows() -> None:
    doc = json.loads(FIXTURE.read_text(encoding="utf-8"))
    content, buffers = _encode(doc)
    assert content == doc["message"]
    assert buffers == doc["buffers_hex"]


if __name__ == "__main__":
    doc = json.loads(FIXTURE.read_text(encoding="utf-8"))
    doc["message"], doc["buffers_hex"] = _encode(doc)
    FIXTURE.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
