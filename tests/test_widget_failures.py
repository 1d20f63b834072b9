"""An unexpected error in any of the widget's background jobs reaches the user: the widget's
``notice`` trait (shown by every view) names it, and the package logger records it.

Each test makes the function one job calls raise, against the real service."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace
from typing import Any

import pytest
from run_support import package_client, wait_until  # noqa: F401 (a fixture)

import flyte_run_widget as frw
from flyte_run_widget.notebook import widget as widget_mod


@pytest.fixture
def caplog_widget(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="flyte_run_widget")
    return caplog


class Injected(RuntimeError):
    pass


def _raise(*_args: Any, **_kwargs: Any) -> Any:
    raise Injected("injected failure <b>x</b>")


def steps(n: int, delay: float) -> int:
    for i in range(n):
        print(f"step {i}", flush=True)
        time.sleep(delay)
    return n


def _assert_reported(w: Any, caplog: pytest.LogCaptureFixture, job: str) -> None:
    assert wait_until(lambda: job in w.notice), f"no notice about {job!r}: {w.notice!r}"
    assert "Injected: injected failure <b>x</b>" in w.notice
    records = [
        r
        for r in caplog.records
        if r.name == widget_mod.__name__ and r.levelno == logging.ERROR and job in r.getMessage()
    ]
    assert records, [r.getMessage() for r in caplog.records]
    assert records[0].exc_info is not None and isinstance(records[0].exc_info[1], Injected)


def test_a_failed_watcher_is_shown_and_logged(
    client: Any, monkeypatch: pytest.MonkeyPatch, caplog_widget: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(widget_mod, "follow_action", _raise)
    r = frw.run(steps, n=1, delay=0)
    w = frw.RunWidget(r)
    try:
        _assert_reported(w, caplog_widget, "following the run")
        # The banner stops saying the widget is live.
        assert w.connection["state"] == "closed"
    finally:
        w.close()


def test_a_failed_log_tailer_is_shown_and_logged(
    client: Any, monkeypatch: pytest.MonkeyPatch, caplog_widget: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(widget_mod, "to_columns", _raise)
    r = frw.run(steps, n=3, delay=0)
    w = frw.RunWidget(r)
    try:
        _assert_reported(w, caplog_widget, "following the logs of attempt 1")
        assert wait_until(lambda: w.phase == "succeeded")  # the rest of the widget goes on
        assert not w._logs[1].done, "an interrupted log is not called complete"
    finally:
        w.close()


def test_a_failed_flusher_is_shown_and_logged(
    client: Any, monkeypatch: pytest.MonkeyPatch, caplog_widget: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(widget_mod, "encode_batch", _raise)
    r = frw.run(steps, n=3, delay=0)
    w = frw.RunWidget(r)
    w.send = lambda *args, **kwargs: None  # type: ignore[method-assign]
    try:
        _assert_reported(w, caplog_widget, "sending log lines to the view")
    finally:
        w.close()


def test_a_failed_abort_is_shown_and_logged(
    client: Any, monkeypatch: pytest.MonkeyPatch, caplog_widget: pytest.LogCaptureFixture
) -> None:
    r = frw.run(steps, n=600, delay=0.1)
    w = frw.RunWidget(r)
    try:
        assert wait_until(lambda: w.phase == "running")
        monkeypatch.setattr(r, "abort", SimpleNamespace(aio=_raise))
        w._on_frontend_msg(w, {"type": "abort", "reason": "clicked"}, [])
        _assert_reported(w, caplog_widget, "aborting the run")
        assert wait_until(lambda: w.busy == ""), "the Abort button is usable again"
    finally:
        w.close()
        monkeypatch.undo()
        r.abort()


def test_a_failed_answer_to_the_view_is_shown_and_logged(
    client: Any, monkeypatch: pytest.MonkeyPatch, caplog_widget: pytest.LogCaptureFixture
) -> None:
    r = frw.run(steps, n=3, delay=0)
    w = frw.RunWidget(r)
    sent: list[dict[str, Any]] = []
    w.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    try:
        assert wait_until(lambda: any(m.get("done") for m in sent))
        monkeypatch.setattr(widget_mod, "chunks", _raise)
        w._on_frontend_msg(w, {"type": "logs_request", "attempt": 1, "from": 0}, [])
        _assert_reported(w, caplog_widget, "answering a 'logs_request' message from the view")
    finally:
        w.close()


def test_notices_of_several_failures_are_all_kept(client: Any) -> None:
    r = frw.run(steps, n=1, delay=0)
    w = frw.RunWidget(r, follow=False)
    w._failed("job one", Injected("first"))
    w._failed("job two", Injected("second"))
    assert "job one" in w.notice and "job two" in w.notice
    for n in range(10):
        w._failed(f"job {n}", Injected("more"))
    assert w.notice.count("\n") == widget_mod._MAX_NOTICES - 1 and "job 9" in w.notice
    w.close()
