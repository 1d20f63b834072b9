"""The widget model against the real service: traits, log batches, abort, close."""

from __future__ import annotations

import os
import threading
import time
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from run_support import package_client, wait_until  # noqa: F401 (a fixture)

import flyte_run_widget as frw
from flyte_run_widget.notebook import batches as batches_mod
from flyte_run_widget.remote.log_lines import Columns, decode_batch, encode_batch


@pytest.fixture
def recorder(monkeypatch):
    """Every message any RunWidget sends from now on. Patched on the class, so that it is in
    place before a widget's watcher starts: one attached to the instance after construction
    misses what the first flush sent."""
    rec = Recorder()
    monkeypatch.setattr(frw.RunWidget, "send", lambda self, content, buffers=None: rec(content, buffers))
    return rec


class Recorder:
    """Log batches in ``messages``; the others (the action tree's) in ``other``."""

    def __init__(self):
        self.messages = []
        self.other = []
        self.lock = threading.Lock()

    def __call__(self, content, buffers=None):
        if content.get("type") != "logs":
            with self.lock:
                self.other.append(content)
            return
        content = {**content, "lines": decode_batch(content["count"], buffers)}  # columns as buffers
        with self.lock:
            self.messages.append(content)

    def lines(self, attempt=1, gaps=False):
        """The lines received, checking that each batch starts where the last one ended; with
        ``gaps``, a batch may start later (lines the kernel's bounded buffer dropped), and the
        missing lines are None."""
        out = []
        for m in self.messages:
            if m["type"] == "logs" and m["attempt"] == attempt:
                if gaps and m["first"] > len(out):
                    out.extend([None] * (m["first"] - len(out)))
                assert m["first"] == len(out), "a batch starts where the last one ended"
                out.extend(m["lines"])
        return out


def steps(n: int, delay: float) -> int:
    for i in range(n):
        print(f"step {i}", flush=True)
        time.sleep(delay)
    return n


def chatty(n: int) -> int:
    for i in range(n):
        print(f"line {i} <script>alert(1)</script>")
    return n


def wait_for_file(path: str) -> int:
    """Runs until ``path`` exists: the test decides when the task ends."""
    print("waiting", flush=True)
    while not os.path.exists(path):
        time.sleep(0.02)
    return 20


def test_traits_follow_the_phases(client, tmp_path):
    gate = tmp_path / "go"
    r = frw.run(wait_for_file, path=str(gate))
    w = r.widget()
    # The task cannot end before the gate opens, so the widget must show it running first.
    assert wait_until(lambda: w.phase == "running")
    assert w.raw_phase == 4 and w.end_ms == 0 and w.outputs == ""
    seen = []
    w.observe(lambda change: seen.append(change["new"]), names="phase")
    gate.touch()
    assert wait_until(lambda: w.phase == "succeeded" and w.outputs)
    assert seen == ["succeeded"]
    assert w.raw_phase == 5 and w.attempts == 1 and w.log_attempts == [1]
    assert 0 < w.start_ms <= w.end_ms and w.run_name == r.name and w.run_url == r.url
    assert w.outputs == "o0 = 20" and w.error == {}
    assert r.widget() is w
    w.close()


def test_log_batches_are_bounded_and_complete(client, recorder):
    n = 120_000
    r = frw.run(chatty, n=n)
    # Every line reaches the views only while the kernel's buffer holds them all: with the
    # default 100,000 a burst of 120,000 lines between two flushes drops the oldest unsent
    # ones, by design (test_bounded_buffer_and_replay_for_a_late_view).
    w = frw.RunWidget(r, max_lines=n + 100)
    rec = recorder
    assert wait_until(lambda: any(m.get("done") for m in rec.messages), timeout=60)
    user = [line[2] for line in rec.lines() if line[1] != 2]
    assert user == [f"line {i} <script>alert(1)</script>" for i in range(n)]
    assert all(len(m["lines"]) <= batches_mod.MAX_BATCH_LINES for m in rec.messages)
    assert all(sum(len(x[2]) for x in m["lines"]) <= batches_mod.MAX_BATCH_CHARS for m in rec.messages)
    assert len(rec.messages) <= n / 1000, "lines travel in batches, never one message per line"
    w.close()


def test_bounded_buffer_and_replay_for_a_late_view(client, recorder):
    r = frw.run(chatty, n=3000)
    w = frw.RunWidget(r, max_lines=1000)
    rec = recorder
    assert wait_until(lambda: any(m.get("done") for m in rec.messages), timeout=60)
    log = w._logs[1]
    assert log.held == 1000 and log.total > 3000
    # Live batches may skip lines the buffer dropped before a flush, never the last 1000.
    live = rec.lines(gaps=True)
    assert len(live) == log.total and None not in live[-1000:]
    assert [x[2] for x in live[-1000:]] == log.tail(1000)
    rec.messages.clear()
    w._handle({"type": "logs_request", "attempt": 1, "from": 0})
    (replay,) = rec.messages
    assert replay["first"] == log.total - 1000 and len(replay["lines"]) == 1000 and replay["done"]
    w.close()


def test_abort_from_the_widget_once(client):
    r = frw.run(steps, n=600, delay=0.1)
    w = r.widget()
    assert wait_until(lambda: w.phase == "running")
    w._on_frontend_msg(w, {"type": "abort", "reason": "clicked"}, [])
    w._on_frontend_msg(w, {"type": "abort", "reason": "clicked twice"}, [])
    assert wait_until(lambda: w.busy == "aborting" or w.phase == "aborted")
    assert wait_until(lambda: w.phase == "aborted", timeout=30)
    assert w.busy == "" and w.error["kind"] == "ABORTED" and w.error["message"] == "clicked"
    assert frw.Run.get(r.name).phase == "aborted"
    # Once every background task of the widget has ended, each AbortRun it sent has been
    # answered, so the service has logged it: the second click sent none.
    assert wait_until(lambda: not w._tasks)
    requests = client.log_path.read_text().count(f"abort of run {r.name} requested")
    assert requests == 1, f"the widget sent AbortRun {requests} times"
    w.close()


def test_failed_run_shows_its_error(client):
    def boom():
        raise RuntimeError("kaput <b>bold</b>")

    r = frw.run(boom)
    w = r.widget()
    assert wait_until(lambda: w.phase == "failed")
    assert w.error["kind"] == "USER" and w.error["code"] == "RuntimeError"
    assert "kaput <b>bold</b>" in w.error["message"]
    html = w.static_html()
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    w.close()


def test_close_stops_the_watchers(client):
    r = frw.run(steps, n=600, delay=0.1)
    w = r.widget()
    assert wait_until(lambda: w.phase == "running")
    tasks = list(w._tasks)
    assert tasks
    w.close()
    assert wait_until(lambda: all(t.done() for t in tasks))
    r.abort()


def test_static_bundle_is_escaped_and_has_text(client):
    r = frw.run(chatty, n=3)
    w = r.widget()
    assert wait_until(lambda: w.phase == "succeeded" and w._logs and w._logs[1].done)
    data = w._repr_mimebundle_()[0] if isinstance(w._repr_mimebundle_(), tuple) else w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/plain"] == repr(r)
    assert "&lt;script&gt;" in data["text/html"] and "<script>" not in data["text/html"]
    w.close()


def test_a_flyte_sdk_run_is_accepted(client):
    r = frw.run(steps, n=1, delay=0)
    sdk_like = SimpleNamespace(pb2=r.pb2)
    w = frw.RunWidget(sdk_like)
    assert w.run_name == r.name
    assert wait_until(lambda: w.phase == "succeeded")
    w.close()
    with pytest.raises(TypeError, match=r"flyte\.remote\.Run"):
        frw.RunWidget(object())


def test_batch_columns_round_trip_hostile_text():
    lines = [
        (1700000000123.0, 1, "plain"),
        (1700000000124.0, 2, "caf\u00e9 \u65e5\u672c \U0001f600 emoji \x1b[31mred\x1b[0m"),
        (0.0, 0, ""),
        (1.5, 1, "nul\x00inside <script>alert(1)</script>"),
        (2.0, 1, "lone \ud800 surrogate"),
        (3.0, 1, "x" * (10 * 2**20)),
    ]
    buffers = encode_batch(Columns([x[2] for x in lines], [x[0] for x in lines], [x[1] for x in lines]))
    text, offsets, ts, origins = buffers
    assert len(offsets) == 4 * (len(lines) + 1) and len(ts) == 8 * len(lines) and len(origins) == len(lines)
    text.decode("utf-8")  # valid UTF-8 whatever the input
    back = decode_batch(len(lines), buffers)
    assert back[:4] + back[5:] == lines[:4] + lines[5:]
    assert back[4] == (2.0, 1, "lone ? surrogate")
    assert decode_batch(0, encode_batch(Columns([], [], []))) == []


def _cols(start: int, n: int, width: int = 3) -> Columns:
    return Columns(
        [f"{i}" * width for i in range(start, start + n)],
        [float(i) for i in range(start, start + n)],
        [1] * n,
    )


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 60), max_size=12),
    capacity=st.integers(1, 150),
    since=st.integers(-5, 700),
)
def test_attempt_log_holds_the_last_lines_in_blocks(sizes, capacity, since):
    log = batches_mod.AttemptLog(capacity)
    total = 0
    for n in sizes:
        log.add(_cols(total, n))
        total += n
    everything = [f"{i}" * 3 for i in range(total)]
    assert log.total == total and log.held == min(total, capacity)
    start, got = log.since(since)
    assert start == max(since, total - log.held)
    assert got.texts == everything[start:] and got.stamps == [float(i) for i in range(start, total)]
    assert log.tail(7) == everything[max(0, total - min(7, log.held)) :]


@settings(max_examples=100, deadline=None)
@given(widths=st.lists(st.integers(0, 300_000), min_size=0, max_size=40))
def test_messages_are_bounded_and_keep_every_line_in_order(widths):
    lines = Columns(["x" * w for w in widths], [float(i) for i in range(len(widths))], [2] * len(widths))
    original = batches_mod.MAX_BATCH_LINES
    batches_mod.MAX_BATCH_LINES = 7  # small, so that both bounds are hit
    try:
        chunks = list(batches_mod.chunks(lines))
    finally:
        batches_mod.MAX_BATCH_LINES = original
    assert [s for c in chunks for s in c.stamps] == lines.stamps
    for c, after in zip(chunks, [*chunks[1:], None][: len(chunks)], strict=True):
        assert 1 <= len(c) <= 7
        size = sum(map(len, c.texts)) + 13 * len(c)
        assert size <= batches_mod.MAX_BATCH_CHARS or len(c) == 1, "only a line over the budget travels alone"
        if after is not None:  # and no message stops early
            assert len(c) == 7 or size + len(after.texts[0]) + 13 > batches_mod.MAX_BATCH_CHARS
