"""Log lines: formatting, filtering and the compact form the widget ships in batches.

text = format_line(line, show_ts=True)   # '2026-01-01T10:00:00.000Z hello\\n'
"""

from __future__ import annotations

from collections.abc import Iterable

from flyteidl2.logs.dataplane import payload_pb2

SYSTEM = payload_pb2.LogLineOriginator.SYSTEM

#: [timestamp in epoch ms, originator (0 unknown, 1 user, 2 system), text]
WireLine = tuple[float, int, str]


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
