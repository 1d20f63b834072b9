"""Log lines: formatting, filtering and the compact form the widget ships in batches.

text = format_line(line, show_ts=True)   # '2026-01-01T10:00:00.000Z hello\\n'
"""

from __future__ import annotations

import re
import sys
from array import array
from collections.abc import Iterable, Sequence
from itertools import accumulate, repeat
from typing import Any

from flyteidl2.logs.dataplane import payload_pb2

SYSTEM = payload_pb2.LogLineOriginator.SYSTEM

#: (timestamp in epoch ms, originator (0 unknown, 1 user, 2 system), text): one decoded line
WireLine = tuple[float, int, str]


class Columns:
    """Lines as the widget keeps and ships them: one list per field, no object per line.

    ``texts`` keep ANSI codes and lose their trailing newline; ``stamps`` are epoch ms;
    ``origins`` hold one originator per line (0 unknown, 1 user, 2 system).
    """

    __slots__ = ("origins", "stamps", "texts")

    def __init__(self, texts: list[str], stamps: list[float], origins: list[int]) -> None:
        self.texts, self.stamps, self.origins = texts, stamps, origins

    def __len__(self) -> int:
        return len(self.texts)

    def slice(self, start: int, stop: int | None = None) -> Columns:
        return Columns(self.texts[start:stop], self.stamps[start:stop], self.origins[start:stop])

    @staticmethod
    def join(parts: Sequence[Columns]) -> Columns:
        if len(parts) == 1:
            return parts[0]
        texts: list[str] = []
        stamps: list[float] = []
        origins: list[int] = []
        for p in parts:
            texts += p.texts
            stamps += p.stamps
            origins += p.origins
        return Columns(texts, stamps, origins)


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def iso_timestamp(line: payload_pb2.LogLine) -> str:
    return line.timestamp.ToJsonString() if line.HasField("timestamp") else ""


def format_line(line: payload_pb2.LogLine, *, show_ts: bool = False) -> str:
    """The message with its trailing newline; with ``show_ts`` an ISO timestamp in front."""
    msg = line.message  # one read: each costs a protobuf field access
    if not msg.endswith("\n"):
        msg += "\n"
    return f"{iso_timestamp(line)} {msg}" if show_ts else msg


#: A message without a newline at its end and at least this long is the start of a line the
#: service cut into pieces (of about 256 KiB: server/logfile.py); the line goes on in the next
#: messages. A shorter one is a whole line from a service that sends lines without newlines.
CUT_PIECE_MIN = 32 * 1024


class Rejoin:
    """Puts lines that the service cut into pieces back together, across batches.

    rejoin = Rejoin()
    for batch in batches:
        whole = rejoin.feed(batch)
    whole += rejoin.flush()      # a line the stream ended in the middle of
    """

    def __init__(self) -> None:
        self._head: payload_pb2.LogLine | None = None
        self._parts: list[str] = []

    def feed(self, lines: Iterable[payload_pb2.LogLine]) -> list[payload_pb2.LogLine]:
        out: list[payload_pb2.LogLine] = []
        for ln in lines:
            msg = ln.message
            goes_on = not msg.endswith("\n") and len(msg) >= CUT_PIECE_MIN
            if self._head is not None:
                self._parts.append(msg)
                if not goes_on:
                    out.append(self._whole())
            elif goes_on:
                self._head, self._parts = ln, [msg]
            else:
                out.append(ln)
        return out

    def flush(self) -> list[payload_pb2.LogLine]:
        return [self._whole()] if self._head is not None else []

    def _whole(self) -> payload_pb2.LogLine:
        assert self._head is not None
        line = payload_pb2.LogLine(
            timestamp=self._head.timestamp, originator=self._head.originator, message="".join(self._parts)
        )
        self._head, self._parts = None, []
        return line


def keep(lines: Iterable[payload_pb2.LogLine], *, filter_system: bool) -> list[payload_pb2.LogLine]:
    if not filter_system:
        return list(lines)
    return [ln for ln in lines if ln.originator != SYSTEM]


def to_columns(lines: Iterable[payload_pb2.LogLine]) -> Columns:
    """A TailLogs batch as columns. Reading a field of a protobuf message is what costs here
    (~1 µs per line for the three), so each line is visited once and nothing else is built."""
    texts: list[str] = []
    stamps: list[float] = []
    origins: list[int] = []
    text, stamp, origin = texts.append, stamps.append, origins.append
    for ln in lines:
        ts = ln.timestamp
        stamp(ts.seconds * 1000 + ts.nanos // 1_000_000)
        text(ln.message)
        origin(ln.originator)  # an enum field reads as an int already
    return Columns(list(map(str.rstrip, texts, repeat("\n"))), stamps, origins)


def encode_batch(cols: Columns) -> list[bytes]:
    """Lines as four little-endian columns, the buffers of one custom message:

    - the UTF-8 text of all lines, concatenated (no separator; unencodable characters such as
      lone surrogates become ``?``);
    - ``len + 1`` Uint32 offsets into the *decoded* text, in UTF-16 code units (what a JS string
      counts): line ``i`` is ``text.slice(offsets[i], offsets[i + 1])``;
    - ``len`` Float64 timestamps (epoch ms) and ``len`` Uint8 originators.
    """
    texts = cols.texts
    joined = "".join(texts)
    if joined.isascii():
        lengths: Iterable[int] = map(len, texts)
    else:  # a character beyond the BMP is two UTF-16 units; a lone surrogate becomes one "?"
        lengths = [len(t) + (0 if t.isascii() else len(_ASTRAL.findall(t))) for t in texts]
    offsets = array("I", accumulate(lengths, initial=0))
    ts = array("d", cols.stamps)
    try:
        origins = bytes(cols.origins)
    except ValueError:  # an originator this client does not know, outside 0..255
        origins = bytes(min(max(o, 0), 255) for o in cols.origins)
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
