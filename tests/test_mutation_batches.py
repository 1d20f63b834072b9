"""Log buffers and messages beyond tests/test_widget.py: what a widget sends from a fresh
attempt log (first line, end of log), messages as full as their bounds allow, and a line longer
than a whole message (docs/mutation.md lists the mutants these kill)."""

from __future__ import annotations

import itertools
import socket

import pytest
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.workflow import run_definition_pb2 as rd

import flyte_run_widget as frw
from flyte_run_widget.notebook.batches import MAX_BATCH_CHARS, MAX_BATCH_LINES, AttemptLog, chunks
from flyte_run_widget.notebook.widget import RunWidget
from flyte_run_widget.remote.log_lines import Columns, decode_batch

PER_LINE = 13  # bytes of offset, timestamp and originator that travel with each line


def cols(start: int, n: int, width: int = 3) -> Columns:
    return Columns(
        [f"{i:0{width}d}"[-width:] for i in range(start, start + n)],
        [float(i) for i in range(start, start + n)],
        [1] * n,
    )


def size(c: Columns) -> int:
    return sum(map(len, c.texts)) + PER_LINE * len(c)


@pytest.fixture
def widget():
    """A widget of a running run that follows nothing: its log buffers are fed by the test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    frw.init(f"localhost:{port}")  # never contacted: follow=False
    run_id = ids.RunIdentifier(project="p", domain="d", name="r1")
    pb2 = rd.Run(
        action=rd.Action(id=ids.ActionIdentifier(run=run_id, name="a0"), status=rd.ActionStatus(phase=4))
    )
    w = RunWidget(frw.Run(pb2), follow=False)
    sent: list[dict] = []
    w.send = lambda content, buffers=None: sent.append(
        {**content, "lines": decode_batch(content["count"], buffers)}
    )
    w.sent_messages = sent  # type: ignore[attr-defined]
    try:
        yield w
    finally:
        w.close()


def test_a_fresh_log_sends_from_its_first_line_and_ends_once(widget):
    log = AttemptLog(capacity=100)
    widget._logs[1] = log
    sent = widget.sent_messages
    widget._flush()
    assert sent == [], "nothing to send yet, and the log is not over"
    log.add(cols(0, 3))
    widget._flush()
    assert [(m["first"], m["count"], bool(m["done"])) for m in sent] == [(0, 3, False)]
    assert [text for _, _, text in sent[0]["lines"]] == ["000", "001", "002"]
    widget._flush()
    assert len(sent) == 1, "lines go out once"
    log.done = True  # the tail ended with no new line: the views still learn the log is over
    widget._flush()
    assert [(m["first"], m["count"], bool(m["done"])) for m in sent[1:]] == [(3, 0, True)]
    widget._flush()
    assert len(sent) == 2, "the end goes out once"


def test_a_view_that_asks_after_the_end_gets_the_held_lines_and_the_end(widget):
    log = AttemptLog(capacity=4)
    widget._logs[1] = log
    log.add(cols(0, 3))
    log.add(cols(3, 3))
    log.done = True
    widget._flush()
    widget.sent_messages.clear()
    widget._handle({"type": "logs_request", "attempt": 1, "from": 0})
    (replay,) = widget.sent_messages
    assert (replay["first"], replay["count"], replay["done"]) == (2, 4, True)
    assert [text for _, _, text in replay["lines"]] == ["002", "003", "004", "005"]


def test_since_the_end_is_empty():
    log = AttemptLog(capacity=10)
    log.add(cols(0, 5))
    for index in (5, 6, 100):
        start, lines = log.since(index)
        assert start == index and len(lines) == 0
        assert (lines.texts, lines.stamps, lines.origins) == ([], [], [])


def _check_full_and_bounded(lines: Columns, parts: list[Columns]) -> None:
    assert [s for p in parts for s in p.stamps] == lines.stamps, "every line once, in order"
    for part, after in itertools.zip_longest(parts, parts[1:]):
        assert 1 <= len(part) <= MAX_BATCH_LINES
        assert size(part) <= MAX_BATCH_CHARS
        if after is not None:  # no message stops before one of its bounds
            assert (
                len(part) == MAX_BATCH_LINES or size(part) + len(after.texts[0]) + PER_LINE > MAX_BATCH_CHARS
            )


def test_many_short_lines_fill_each_message_to_its_character_bound():
    lines = cols(0, 20_000, width=100)  # 113 bytes a line: ~4,640 lines fill 512 KiB
    parts = list(chunks(lines))
    _check_full_and_bounded(lines, parts)
    per_message = MAX_BATCH_CHARS // (100 + PER_LINE)
    assert [len(p) for p in parts] == [per_message] * 4 + [20_000 - 4 * per_message]


def test_tiny_lines_fill_each_message_to_its_line_bound():
    lines = cols(0, 2 * MAX_BATCH_LINES + 7, width=1)
    parts = list(chunks(lines))
    _check_full_and_bounded(lines, parts)
    assert [len(p) for p in parts] == [MAX_BATCH_LINES, MAX_BATCH_LINES, 7]


def test_lines_of_mixed_width_stay_within_both_bounds():
    widths = [(i * 7919) % 3000 for i in range(6_000)]
    lines = Columns(["x" * w for w in widths], [float(i) for i in range(len(widths))], [2] * len(widths))
    _check_full_and_bounded(lines, list(chunks(lines)))


def test_a_line_longer_than_a_message_travels_alone():
    big = "y" * (MAX_BATCH_CHARS + 1)
    for texts in ([big], ["a", big, "b"], [big, big]):
        lines = Columns(texts, [float(i) for i in range(len(texts))], [1] * len(texts))
        parts = list(itertools.islice(chunks(lines), 10))  # bounded: a broken cut may never end
        assert [p.texts for p in parts] == [[t] for t in texts]


def test_an_attempt_that_logged_nothing_still_ends(widget):
    widget._logs[1] = log = AttemptLog(capacity=100)
    log.done = True
    widget._flush()
    # the view can tell "logged nothing" from "no lines yet"
    assert [(m["first"], m["count"], m["done"]) for m in widget.sent_messages] == [(0, 0, True)]


def test_tail_takes_the_last_lines_across_blocks():
    log = AttemptLog(capacity=100)
    for start, n in ((0, 3), (3, 2), (5, 1)):
        log.add(cols(start, n))
    everything = [f"{i:03d}" for i in range(6)]
    for n in range(8):
        assert log.tail(n) == everything[max(0, 6 - n) :]
