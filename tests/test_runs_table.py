"""The runs table against the real service: it lists, follows new runs and phase changes through
WatchRuns (sending only what changed), opens a run's widget and aborts selected runs."""

from __future__ import annotations

import os
import struct
import threading
import time

import pytest
from run_support import package_client, wait_until  # noqa: F401 (a fixture)

import flyte_run_widget as frw
from flyte_run_widget.notebook import runs_table as rt
from flyte_run_widget.notebook.run_rows import MAX_ROWS_PER_MESSAGE, Match, Row, RowTable, encode_rows


class Browser:
    """What a view holds: every ``rows`` message the table sends, decoded and applied as
    js/src/run_rows.js applies it (patched on the class, so the first flush is seen too)."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, str, str, float, float]] = {}
        self.messages: list[dict[str, object]] = []
        self.lock = threading.Lock()

    def __call__(self, content, buffers=None):
        assert content["type"] == "rows"
        names = content["names"]
        n = len(names)
        meta = struct.unpack(f"<{3 * n}I", buffers[0])
        times = struct.unpack(f"<{2 * n}d", buffers[1])
        with self.lock:
            self.messages.append(content)
            if content["reset"]:
                self.rows.clear()
            for name in content["drop"]:
                self.rows.pop(name, None)
            for i, name in enumerate(names):
                phase, task, user = meta[3 * i : 3 * i + 3]
                self.rows[name] = (
                    content["phases"][phase],
                    content["tasks"][task],
                    content["users"][user],
                    times[2 * i],
                    times[2 * i + 1],
                )

    def phase(self, name: str) -> str | None:
        with self.lock:
            row = self.rows.get(name)
        return row[0] if row else None

    def sent_names(self) -> list[str]:
        with self.lock:
            return [name for m in self.messages for name in m["names"]]


@pytest.fixture
def browser(monkeypatch):
    rec = Browser()
    monkeypatch.setattr(rt.RunsGrid, "send", lambda self, content, buffers=None: rec(content, buffers))
    return rec


def quick(x: int) -> int:
    return x


def wait_for_file(path: str) -> int:
    while not os.path.exists(path):
        time.sleep(0.02)
    return 1


def test_table_lists_then_follows_new_runs_and_phase_changes(client, browser, tmp_path):
    done = [frw.run(quick, x=i) for i in range(2)]
    for r in done:
        r.wait(quiet=True)
    table = frw.runs()
    try:
        assert wait_until(lambda: all(browser.phase(r.name) == "succeeded" for r in done))
        # A run started after the table was made arrives through WatchRuns and changes phase.
        gate = tmp_path / "go"
        new = frw.run(wait_for_file, path=str(gate))
        assert wait_until(lambda: browser.phase(new.name) == "running")
        row = table.rows[new.name]
        assert row.task == "wait_for_file" and row.start_ms > 0 and row.end_ms == 0 and row.user
        gate.touch()
        assert wait_until(lambda: browser.phase(new.name) == "succeeded")
        assert table.rows[new.name].end_ms >= table.rows[new.name].start_ms
        # Changes only: WatchRuns re-sends every run in its snapshot, the view hears of the two
        # finished ones once (or again only in answer to a view's sync request).
        assert wait_until(lambda: table.grid.total == 3)
        for r in done:
            assert browser.sent_names().count(r.name) == 1, browser.messages
        assert set(browser.rows) == set(table.rows) == {*(r.name for r in done), new.name}
    finally:
        table.close()


def test_phase_filter_and_limit(client, browser, tmp_path):
    gates = [tmp_path / f"g{i}" for i in range(3)]
    running = [frw.run(wait_for_file, path=str(g)) for g in gates]
    for r in running:
        r.wait(quiet=True, wait_for="running")
    finished = frw.run(quick, x=1)  # the newest run, kept out by the phase filter alone
    finished.wait(quiet=True)
    table = frw.runs(phase="running", limit=2)
    try:
        # The two newest running runs; the finished one never matches.
        want = {running[1].name, running[2].name}
        assert wait_until(lambda: set(browser.rows) == want)
        assert set(table.rows) == want
        # A run in the table that leaves the filter stays and shows its new phase.
        gates[2].touch()
        assert wait_until(lambda: browser.phase(running[2].name) == "succeeded")
        # A newer running run pushes the oldest out (limit 2).
        extra = frw.run(wait_for_file, path=str(gates[0]))
        assert wait_until(lambda: set(browser.rows) == {running[2].name, extra.name})
        assert finished.name not in browser.sent_names()
    finally:
        for g in gates:
            g.touch()
        table.close()


def test_abort_selected_runs_together(client, browser, tmp_path):
    gate = tmp_path / "never"
    runs = [frw.run(wait_for_file, path=str(gate)) for _ in range(3)]
    for r in runs:
        r.wait(quiet=True, wait_for="running")
    table = frw.runs()
    try:
        assert wait_until(lambda: all(browser.phase(r.name) == "running" for r in runs))
        # What "Yes, abort" sends; the kernel hears it on its main thread.
        table.grid._handle_custom_msg({"type": "abort", "names": [runs[0].name, runs[1].name]}, [])
        assert wait_until(lambda: browser.phase(runs[0].name) == browser.phase(runs[1].name) == "aborted")
        assert [frw.Run.get(r.name).phase for r in runs] == ["aborted", "aborted", "running"]
        assert wait_until(lambda: table.grid.busy == "")
        assert table.grid.notice == ""
    finally:
        gate.touch()
        table.close()


def test_clicking_a_row_opens_the_run_widget_below(client, browser):
    r = frw.run(quick, x=7)
    r.wait(quiet=True)
    table = frw.runs()
    try:
        assert wait_until(lambda: r.name in browser.rows)
        table.grid._handle_custom_msg({"type": "open", "name": r.name}, [])
        assert len(table.children) == 2 and table.grid.opened == r.name
        detail = table.children[1]
        assert isinstance(detail, frw.RunWidget) and detail.run.name == r.name
        assert wait_until(lambda: detail.outputs == "o0 = 7")
        # The open run again closes it.
        table.grid._handle_custom_msg({"type": "open", "name": r.name}, [])
        assert list(table.children) == [table.grid] and table.grid.opened == ""
    finally:
        table.close()


def test_after_a_reconnect_the_table_sends_only_what_changed(fixed_service, browser, tmp_path, monkeypatch):
    from flyte_run_widget.client import streams

    monkeypatch.setattr(streams, "BACKOFF_START", 0.05)
    frw.init(fixed_service.endpoint, project="proj", domain="development")
    done = [frw.run(quick, x=i) for i in range(2)]
    for r in done:
        r.wait(quiet=True)
    table = frw.runs()
    try:
        assert wait_until(lambda: {r.name for r in done} <= set(browser.rows))
        fixed_service.kill()
        fixed_service.start()
        # WatchRuns starts again with every run of the project: only the new one goes out.
        new = frw.run(quick, x=9)
        assert wait_until(lambda: browser.phase(new.name) == "succeeded", timeout=60)
        assert table.grid.connection["state"] == "connected"
        for r in done:
            assert browser.sent_names().count(r.name) == 1, browser.messages
    finally:
        table.close()


def test_a_view_that_starts_late_gets_every_row(client, browser):
    runs = [frw.run(quick, x=i) for i in range(3)]
    for r in runs:
        r.wait(quiet=True)
    table = frw.runs()
    try:
        assert wait_until(lambda: table.grid.total == 3)
        browser.rows.clear()  # a new page: nothing held
        table.grid._handle_custom_msg({"type": "sync"}, [])
        assert wait_until(lambda: set(browser.rows) == {r.name for r in runs})
        assert browser.messages[-1]["reset"] is True
    finally:
        table.close()


def test_listall_in_a_cell_is_the_same_table_with_an_escaped_snapshot(client, browser):
    hostile = frw.task(quick, name="<img src=x onerror=alert(1)>")
    runs = [frw.run(hostile, x=i) for i in range(2)]
    for r in runs:
        r.wait(quiet=True)
    listing = frw.Run.listall(limit=10)
    bundle = listing._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    table = listing.table()
    try:
        assert "application/vnd.jupyter.widget-view+json" in data
        assert isinstance(table, frw.RunsTable) and set(table.rows) == {r.name for r in runs}
        html = data["text/html"]
        assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
        assert all(r.name in html and r.name in data["text/plain"] for r in runs)
        assert wait_until(lambda: set(browser.rows) == {r.name for r in runs})
        # Still an iterator, as before.
        assert sorted(r.name for r in frw.Run.listall(limit=10)) == sorted(r.name for r in runs)
    finally:
        table.close()


def test_bad_arguments_name_the_fix(client):
    with pytest.raises(frw.errors.ArgumentValueError, match="limit must be 1 or more"):
        frw.runs(limit=0)
    with pytest.raises(frw.errors.ArgumentValueError, match="unknown phase 'runing'"):
        frw.runs(phase="runing")


def _row(name: str, start: float, phase: int = 4) -> Row:
    return Row(name, "t", "m.t", "me", phase, start, 0.0)


def test_row_table_keeps_the_newest_and_follows_held_rows():
    table = RowTable(Match(frozenset({4})), limit=2)
    for i in range(5):
        table.offer(_row(f"r{i}", float(i)))
    assert set(table.rows) == {"r3", "r4"}
    assert table.offer(_row("old", 0.5)) is False  # older than all it holds
    assert table.offer(_row("done", 9.0, phase=5)) is False  # does not match
    assert table.offer(_row("r3", 3.0, phase=5)) is True  # held: follows its change
    assert table.offer(_row("r3", 3.0, phase=5)) is False  # the same again: nothing to send
    changed, dropped = table.take_changes()
    assert changed == ["r3", "r4"] and dropped == []  # r0..r2 came and went before any flush
    table.offer(_row("r9", 9.0))
    assert table.take_changes() == (["r9"], ["r3"])


def test_encoded_rows_are_bounded_and_carry_every_row():
    rows = [_row(f"r{i}", float(i)) for i in range(MAX_ROWS_PER_MESSAGE * 2 + 1)]
    got = Browser()
    for content, buffers in encode_rows(rows, ["gone"], reset=True):
        got(content, buffers)
    assert [len(m["names"]) for m in got.messages] == [MAX_ROWS_PER_MESSAGE, MAX_ROWS_PER_MESSAGE, 1]
    assert [m["reset"] for m in got.messages] == [True, False, False]
    assert got.rows["r7"] == ("running", "t", "me", 7.0, 0.0) and len(got.rows) == len(rows)


def test_the_table_overrides_nothing_of_its_box_by_accident():
    # ipywidgets calls its own _send, open, ... from inside: a method of ours with the same name
    # broke syncing the opened run's widget (a kernel-side error no view would show).
    import ipywidgets

    meant = {"__init__", "__doc__", "__module__", "__annotations__", "_repr_mimebundle_", "close"}
    traitlets_own = {"_descriptors", "_instance_inits", "_traits", "_static_immutable_initial_values"}
    ours = {n for n in vars(rt.RunsTable) if n not in traitlets_own and "trait_default" not in n}
    assert ours & set(dir(ipywidgets.VBox)) <= meant


def test_a_saved_notebook_shows_the_runs_as_escaped_text(client):
    hostile = frw.task(quick, name="<script>alert(1)</script>")
    r = frw.run(hostile, x=1)
    r.wait(quiet=True)
    table = frw.runs()
    try:
        bundle = table._repr_mimebundle_()
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        # Shown as the cell's result: the rows are there already, for nbconvert and GitHub.
        assert r.name in data["text/html"] and r.name in data["text/plain"]
        html = data["text/html"]
        assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    finally:
        table.close()


def test_the_newest_page_is_listed_before_the_call_returns_the_rest_after(client, browser, monkeypatch):
    monkeypatch.setattr(rt, "FIRST_ROWS", 1)
    runs = [frw.run(quick, x=i) for i in range(3)]
    for r in runs:
        r.wait(quiet=True)
    table = frw.runs()
    try:
        assert runs[-1].name in table.rows  # before frw.runs() returned: the newest
        assert wait_until(lambda: set(browser.rows) == {r.name for r in runs})
    finally:
        table.close()
