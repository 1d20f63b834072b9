"""Log lines: formatting, filtering and the compact form the widget ships in batches.

text = format_line(line, show_ts=True)   # '2026-01-01T10:00:00.000Z hello\\n'
"""

from __future__ import annotations

import re
import sys
from array import array
from collections.abc import Iterable
from itertools import accumulate
from typing import Any

from flyteidl2.logs.dataplane import payload_pb2

SYSTEM = payload_pb2.LogLineOriginator.SYSTEM

#: [timestamp in epoch ms, originator (0 unknown, 1 user, 2 system), text]
WireLine = tuple[float, int, str]

_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def timestamp_ms(line: payload_pb2.LogLine) -> float:
    ts = line.timestamp
    return ts.seconds * 1000 + ts.nanos / 1_000_000


def iso_timestamp(line: payload_pb2.LogLine) -> str:
    return line.timestamp.ToJsonString() if line.HasField("timestamp") else ""


def format_line(line: payload_pb2.LogLine, *, show_ts: bool = False) -> str:
    """The message with its trailing newline; with ``show_ts`` an ISO timestamp in front."""
    msg = line.message if line.message.endswith("\n") else line.message + "\n"
    return f"{iso_timestamp(line)} {msg}" if show_ts else msg


def keep(lines: Iterable[payload_pb2.LogLine], *, filter_system: bool) -> list[payload_pb2.LogLine]:
    if not filter_system:
        return list(lines)
    return [ln for ln in lines if ln.originator != SYSTEM]


def to_wire(lines: Iterable[payload_pb2.LogLine]) -> list[WireLine]:
    """The widget's batch form; the text keeps ANSI codes and loses its trailing newline."""
    out: list[WireLine] = []
    append = out.append
    for ln in lines:
        ts = ln.timestamp
        # no int(): an enum field reads as an int already
        append((ts.seconds * 1000 + ts.nanos // 1_000_000, ln.originator, ln.message.rstrip("\n")))
    return out


def encode_batch(lines: list[WireLine]) -> list[bytes]:
    """A batch as four little-endian columns, the buffers of one custom message:

    - the UTF-8 text of all lines, concatenated (no separator; unencodable characters such as
      lone surrogates become ``?``);
    - ``len + 1`` Uint32 offsets into the *decoded* text, in UTF-16 code units (what a JS string
      counts): line ``i`` is ``text.slice(offsets[i], offsets[i + 1])``;
    - ``len`` Float64 timestamps (epoch ms) and ``len`` Uint8 originators.
    """
    texts = [ln[2] for ln in lines]
    joined = "".join(texts)
    if joined.isascii():
        lengths: Iterable[int] = map(len, texts)
    else:  # a character beyond the BMP is two UTF-16 units; a lone surrogate becomes one "?"
        lengths = [len(t) + (0 if t.isascii() else len(_ASTRAL.findall(t))) for t in texts]
    offsets = array("I", accumulate(lengths, initial=0))
    ts = array("d", [ln[0] for ln in lines])
    origins = bytes(min(max(int(ln[1]), 0), 255) for ln in lines)
    if sys.byteorder == "big":
        offsets.byteswap()
        ts.byteswap()
    return [joined.encode("utf-8", "replace"), offsets.tobytes(), ts.tobytes(), origins]


def decode_batch(count: int, buffers: list[Any]) -> list[WireLine]:
    """The inverse of :func:`encode_batch` (for tests and tools)."""
    data, off_b, ts_b, origins = (bytes(b) for b in buffers)
    text = data.decode("utf-8").encode("utf-16-le", "surrogatepass")
    offsets, ts = array("I"), array("d")
    offsets.frombytes(off_b)
    ts.frombytes(ts_b)
    if sys.byteorder == "big":
        offsets.byteswap()
        ts.byteswap()
    assert len(offsets) == count + 1 and len(ts) == count and len(origins) == count
    return [
        (ts[i], origins[i], text[2 * offsets[i] : 2 * offsets[i + 1]].decode("utf-16-le", "surrogatepass"))
        for i in range(count)
    ]
