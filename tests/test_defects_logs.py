"""A line too long for one message is cut by the service into pieces that say they go on, and
put back together by the client."""

from __future__ import annotations

from pathlib import Path

from flyteidl2.logs.dataplane import payload_pb2
from flyteidl2.workflow import run_logs_service_pb2

from flyte_run_widget.remote.log_lines import CUT_PIECE_MIN, Rejoin
from flyte_run_widget.server.log_files import MAX_LINE_BYTES, LogReader, LogWriter, cut_at


def _served(path: Path) -> list[payload_pb2.LogLine]:
    lines: list[payload_pb2.LogLine] = []
    for body in LogReader(path).read_encoded():
        lines.extend(run_logs_service_pb2.TailLogsResponse.Logs.FromString(body).lines)
    return lines


def test_a_long_line_is_cut_between_characters_and_says_it_goes_on(tmp_path: Path) -> None:
    line = ("a" + "é" * 100_000 + "€" * 100_000 + "😀" * 50_000).encode()  # 1, 2, 3, 4 bytes
    with LogWriter(tmp_path / "a.log") as writer:
        writer.append(1, 1, line)
        writer.append(2, 1, b"next")
    messages = [ln.message for ln in _served(tmp_path / "a.log")]
    assert len(messages) > 3
    assert all(not m.endswith("\n") for m in messages[:-2]) and messages[-2].endswith("\n")
    assert all(len(m.encode()) <= MAX_LINE_BYTES for m in messages[:-2])
    assert "\ufffd" not in "".join(messages)  # no character was split
    assert "".join(messages) == line.decode() + "\n" + "next\n"
    records = LogReader(tmp_path / "a.log").read()
    assert b"".join(r[2] for r in records[:-1]) == line and records[-1][2] == b"next"


def test_cut_at_backs_off_to_a_character_start() -> None:
    data = b"x" * 9 + "😀".encode() + b"y"  # the emoji's 4 bytes are 9..12
    assert [cut_at(data, limit) for limit in (9, 10, 11, 12, 13)] == [9, 9, 9, 9, 13]
    assert cut_at(b"\x80" * 20, 10) == 10  # not UTF-8: cut anywhere


def _line(message: str, ts: int = 0) -> payload_pb2.LogLine:
    line = payload_pb2.LogLine(message=message, originator=payload_pb2.LogLineOriginator.USER)
    line.timestamp.FromNanoseconds(ts)
    return line


def test_rejoin_puts_pieces_together_across_batches() -> None:
    piece = "p" * CUT_PIECE_MIN
    rejoin = Rejoin()
    first = rejoin.feed([_line("before\n"), _line(piece, ts=7)])
    second = rejoin.feed([_line(piece, ts=8)])
    third = rejoin.feed([_line("end\n", ts=9), _line("after\n")])
    assert [ln.message for ln in first] == ["before\n"] and second == []
    assert [ln.message for ln in third] == [piece * 2 + "end\n", "after\n"]
    assert third[0].timestamp.ToNanoseconds() == 7  # when the line began
    assert rejoin.flush() == []


def test_rejoin_leaves_short_lines_without_newlines_alone() -> None:
    """Some services send every line without a newline: those are whole lines."""
    rejoin = Rejoin()
    assert [ln.message for ln in rejoin.feed([_line("one"), _line("two")])] == ["one", "two"]


def test_rejoin_hands_out_a_line_the_stream_ended_in() -> None:
    rejoin = Rejoin()
    assert rejoin.feed([_line("q" * CUT_PIECE_MIN)]) == []
    assert [ln.message for ln in rejoin.flush()] == ["q" * CUT_PIECE_MIN]
