"""RunWidget: a live run in a notebook cell.

    RunWidget(run)        # or just `run` as the last expression of a cell

A watcher on the background loop follows the run: state goes into synced traits (a late view
rebuilds from them), log lines go out as batched custom messages, a few per second at most,
because jupyter_server drops iopub traffic beyond ~1000 messages/s.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import html
import logging
import re
import time
from pathlib import Path
from typing import Any

import anywidget
import traitlets as t
from flyteidl2.workflow import run_definition_pb2

from ..client import loop as _loop
from ..client import sign_in as _sign_in
from ..client.streams import follow_action, follow_logs
from ..common.idl import error_code
from ..common.phase import friendly_phase, is_success, is_terminal
from ..errors import FlyteRunWidgetError
from ..remote.log_lines import encode_batch, to_columns
from ..remote.run import Run
from .batches import AttemptLog, chunks
from .host import TextOutbox, detect_host, transport_for
from .kernel_events import install_kernel_pump, route_clicks_early
from .page_link import signed_page_url
from .sign_in_view import as_trait
from .tree_feed import TreeFeed, outputs_text

logger = logging.getLogger(__name__)

_STATIC = Path(__file__).parent.parent / "static"
FLUSH_INTERVAL = 0.25
_WATCHING = "following the run"
_MAX_NOTICES = 5
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


def as_run(run: Any) -> Run:
    """Our Run, or a ``flyte.remote.Run`` or ``flyte.remote.Action`` (anything whose ``pb2`` is
    a Run or an Action message) converted to one; an Action becomes a Run around that action."""
    if isinstance(run, Run):
        return run
    pb2: Any = getattr(run, "pb2", None)
    # By message name, not class: the SDK may have loaded its messages from another module path.
    kind = getattr(getattr(pb2, "DESCRIPTOR", None), "full_name", "")
    if kind == run_definition_pb2.Run.DESCRIPTOR.full_name:
        return Run(run_definition_pb2.Run.FromString(pb2.SerializeToString()))
    if kind == run_definition_pb2.Action.DESCRIPTOR.full_name:
        action = run_definition_pb2.Action.FromString(pb2.SerializeToString())
        return Run(run_definition_pb2.Run(action=action))
    raise TypeError(
        "RunWidget needs a flyte_run_widget.Run, a flyte.remote.Run or a flyte.remote.Action, "
        f"not {type(run).__name__}"
    )


class RunWidget(TextOutbox, TreeFeed, anywidget.AnyWidget):
    _esm = _STATIC / "widget.js"
    _css = _STATIC / "widget.css"

    run_name = t.Unicode("").tag(sync=True)
    run_url = t.Unicode("").tag(sync=True)
    task_name = t.Unicode("").tag(sync=True)
    phase = t.Unicode("").tag(sync=True)
    raw_phase = t.Int(0).tag(sync=True)
    start_ms = t.Float(0).tag(sync=True)
    end_ms = t.Float(0).tag(sync=True)
    now_ms = t.Float(0).tag(sync=True)
    attempts = t.Int(0).tag(sync=True)
    error = t.Dict().tag(sync=True)
    outputs = t.Unicode("").tag(sync=True)
    connection = t.Dict({"state": "connected", "message": ""}).tag(sync=True)
    busy = t.Unicode("").tag(sync=True)
    max_lines = t.Int(100_000).tag(sync=True)
    log_attempts = t.List(t.Int()).tag(sync=True)
    notice = t.Unicode("").tag(sync=True)
    # A waiting device login of the client's service: {url, code, endpoint}, else {}.
    sign_in = t.Dict().tag(sync=True)
    # The action whose log, attempts, error and outputs the panels show ("": the run's root).
    selected = t.Unicode("").tag(sync=True)
    tree_size = t.Int(0).tag(sync=True)
    # "binary", or "text" where the host drops message buffers or background updates (host.py).
    transport = t.Unicode("binary").tag(sync=True)
    outbox = t.Unicode("").tag(sync=True)

    def __init__(self, run: Any, *, max_lines: int = 100_000, follow: bool = True, **kwargs: Any) -> None:
        if max_lines < 1:
            raise ValueError("max_lines must be at least 1")
        self.run = as_run(run)
        self._init_outbox()
        kwargs.setdefault("transport", transport_for(detect_host()))
        super().__init__(max_lines=max_lines, **kwargs)
        self._logs: dict[int, AttemptLog] = {}
        self._tasks: set[concurrent.futures.Future[Any]] = set()
        self._aborted = False
        self._closed = False
        self._pending = asyncio.Event()  # set on the background loop when lines wait to be sent
        self._links_answered: set[str] = set()
        self._init_tree()
        self._state_from_pb2(self.run.pb2.action)
        self.on_msg(self._on_frontend_msg)
        route_clicks_early(getattr(self, "comm", None), self._handle_safely)
        self._stop_listening = _sign_in.add_listener(self._show_sign_in)
        install_kernel_pump()
        if follow:
            self._spawn(self._watch(), _WATCHING)
            self._flusher_job = self._spawn(self._flusher(), "sending log lines to the view")
            self._spawn(self._follow_tree(), "following the run's actions")

    # -- state ------------------------------------------------------------------------------

    def _state_from_pb2(self, action: Any, details: run_definition_pb2.ActionDetails | None = None) -> None:
        run = self.run
        status = action.status
        raw = int(status.phase)
        with self.hold_sync():
            self.run_name = run.name
            try:
                self.run_url = run.url
            except FlyteRunWidgetError:
                self.run_url = ""
            self.task_name = run.task_name
            self.raw_phase = raw
            self.phase = friendly_phase(raw)
            self.start_ms = (
                float(status.start_time.ToMilliseconds()) if status.HasField("start_time") else 0.0
            )
            self.end_ms = float(status.end_time.ToMilliseconds()) if status.HasField("end_time") else 0.0
            self.now_ms = time.time() * 1000
            self.attempts = int(status.attempts)
            if details is not None and self._focused_root():
                self._panels_from(details)
            if is_terminal(raw) and self.busy == "aborting":
                self.busy = ""

    def _panels_from(self, details: run_definition_pb2.ActionDetails, action_id: Any = None) -> None:
        """The selected action's error and attempts into the panels; its logs followed."""
        raw = int(details.status.phase)
        self.error = _error_dict(details)
        self.log_attempts = sorted(
            {a.attempt for a in details.attempts if a.attempt} or ({1} if raw >= 3 else set())
        )
        for n in self.log_attempts:
            if n not in self._logs:
                self._logs[n] = AttemptLog(self.max_lines)
                self._focus_job(self._tail(n, action_id), f"following the logs of attempt {n}")

    # -- background work --------------------------------------------------------------------

    def _spawn(self, coro: Any, what: str) -> concurrent.futures.Future[Any]:
        """Run ``coro`` on the background loop. ``what`` names the job in a notice if it fails:
        a job that died silently would leave the widget frozen while it looks live."""
        fut = _loop.submit(coro)
        self._tasks.add(fut)
        fut.add_done_callback(functools.partial(self._task_done, what))
        return fut

    def _task_done(self, what: str, fut: concurrent.futures.Future[Any]) -> None:
        self._tasks.discard(fut)
        if fut.cancelled():
            return
        error = fut.exception()
        if error is not None:
            self._failed(what, error)

    def _failed(self, what: str, error: BaseException) -> None:
        """An unexpected error ended a job: tell the user in the widget and the package log."""
        logger.error("%s stopped for run %s", what, self.run.name, exc_info=error)
        self._add_notice(
            f"{what} stopped after an unexpected error ({type(error).__name__}: {error}); "
            "flyte_run_widget.RunWidget(run) starts a fresh widget"
        )
        if what == _WATCHING:
            self._set_connection("closed", "the widget stopped following the run")

    def _add_notice(self, text: str) -> None:
        # Several jobs can fail at once; one notice must not hide another.
        kept = [line for line in self.notice.split("\n") if line and line != text]
        self.notice = "\n".join([*kept, text][-_MAX_NOTICES:])

    def _set_connection(self, state: str, message: str) -> None:
        self.connection = {"state": state, "message": message}

    async def _watch(self) -> None:
        try:
            # A widget keeps trying while it is shown (reconnecting, every 10 s at most): the
            # service may take any time to come back, and a widget that gave up stays stale.
            stream = follow_action(self.run.client, self.run.action_id, self._set_connection, patience=None)
            async for details in stream:
                self.run._update(details)
                self._state_from_pb2(self.run.pb2.action, details)
            if is_success(self.run.raw_phase) and self._focused_root():
                out = await self.run.outputs.aio()
                if self._focused_root():
                    self.outputs = outputs_text(out.named)
        except FlyteRunWidgetError as e:
            logger.error("run %s: stopped following the run: %s", self.run.name, e)
            self._set_connection("closed", str(e))
        finally:
            if self.busy == "waiting":
                self.busy = ""
            self._pending.set()  # let the flusher see the end

    async def _tail(self, attempt: int, action_id: Any = None) -> None:
        buf = self._logs[attempt]
        try:
            stream = follow_logs(
                self.run.client,
                action_id or self.run.action_id,
                attempt,
                on_connection=self._set_connection,
                patience=None,
            )
            async for batch in stream:
                buf.add(to_columns(batch))
                self._pending.set()
        except FlyteRunWidgetError as e:
            logger.warning("run %s: logs of attempt %d: %s", self.run.name, attempt, e)
            self._add_notice(f"logs of attempt {attempt}: {e}")
        except BaseException:
            # Not marked done: the view must not call an interrupted log complete.
            self._pending.set()
            raise
        buf.done = True
        self._pending.set()

    async def _flusher(self) -> None:
        # Sleeps until there is something to send, so a silent run costs no wake-ups; then
        # waits one interval to gather a batch.
        while not self._closed:
            await self._pending.wait()
            await asyncio.sleep(FLUSH_INTERVAL)
            self._pending.clear()
            self._flush()
            if self.run.done() and self._tree_done and all(buf.done_sent for buf in self._logs.values()):
                return

    def _flush(self) -> None:
        self._flush_tree()
        for attempt, log in list(self._logs.items()):
            done = log.done  # read once: the tail task may finish while we send
            if log.sent < log.total or (done and not log.done_sent):
                total = log.total
                self._send_range(attempt, log, log.sent, total, done)
                log.sent = total
                log.done_sent = done

    def _send_range(
        self, attempt: int, log: AttemptLog, start: int, stop: int, done: bool, replay: bool = False
    ) -> None:
        """Send lines [start, stop) in bounded messages; lines the buffer dropped are skipped,
        and the view counts the gap as dropped. ``replay``: an answer to a view's request."""
        first, lines = log.since(start)
        if len(lines) > stop - first:
            lines = lines.slice(0, max(0, stop - first))
        parts = list(chunks(lines)) or [lines]
        for n, chunk in enumerate(parts):
            last = n == len(parts) - 1
            msg = {"type": "logs", "attempt": attempt, "first": first, "count": len(chunk)}
            msg["done"] = done and last
            if replay:
                msg["replay"] = True
            self.send(msg, buffers=encode_batch(chunk))
            first += len(chunk)

    # -- messages from the views -------------------------------------------------------------

    def _on_frontend_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        # Runs on the kernel's main thread; all state changes happen on the background loop,
        # except the answer to a poll, which must leave from this thread (host.py).
        if isinstance(content, dict) and content.get("type") == "poll":
            self._answer_poll()
        elif isinstance(content, dict):
            _loop.get_loop().call_soon_threadsafe(self._handle_safely, content)

    def _handle_safely(self, content: dict[str, Any]) -> None:
        # A callback on the loop: an error here would only reach asyncio's default handler.
        try:
            self._handle(content)
        except Exception as e:
            self._failed(f"answering a {str(content.get('type'))[:40]!r} message from the view", e)

    def _handle(self, content: dict[str, Any]) -> None:
        kind = content.get("type")
        if kind == "abort":
            self._request_abort(str(content.get("reason") or "Aborted from the notebook widget"))
        elif kind == "wait":
            if not self.run.done():
                self.busy = "waiting"
        elif kind == "page_url":
            self._answer_page_url(content.get("id"))
        elif self._handle_tree(kind, content):
            pass
        elif kind == "logs_request":
            attempt, start = content.get("attempt"), content.get("from", 0)
            if isinstance(attempt, int) and isinstance(start, int) and attempt in self._logs:
                log = self._logs[attempt]
                if start < log.sent or log.done_sent:
                    self._send_range(attempt, log, start, log.sent, log.done_sent, replay=True)

    def _answer_page_url(self, request: Any) -> None:
        # ipykernel 7 hands a click over twice (early, and again once a blocking cell ends): one
        # answer is enough. The text transport's outbox is a trait, saved with the notebook: the
        # token never goes there, the view opens the plain address.
        if not isinstance(request, str) or request in self._links_answered or self.transport == "text":
            return
        if len(self._links_answered) > 100:
            self._links_answered.clear()
        self._links_answered.add(request)
        try:
            signed = signed_page_url(self.run.client.config, self.run_url) if self.run_url else None
        except Exception:
            logger.warning("run %s: could not sign the run page's address", self.run.name, exc_info=True)
            signed = None
        self.send({"type": "page_url", "id": request, "url": signed or ""})

    def _outbox_idle(self) -> bool:
        job = self._flusher_job
        return job is None or job.done()

    def _request_abort(self, reason: str) -> None:
        if self._aborted or self.run.done():
            return
        self._aborted = True
        self.busy = "aborting"
        self._spawn(self._abort(reason), "aborting the run")

    async def _abort(self, reason: str) -> None:
        try:
            await self.run.abort.aio(reason=reason)
            self._state_from_pb2(self.run.pb2.action)
        except FlyteRunWidgetError as e:
            logger.warning("run %s: abort failed: %s", self.run.name, e)
            self._add_notice(f"abort failed: {e}")
            self.busy = ""
            self._aborted = False
        except BaseException:
            self.busy = ""
            self._aborted = False
            raise

    # -- lifecycle and static output -----------------------------------------------------------

    def _show_sign_in(self, prompt: _sign_in.SignInPrompt | None) -> None:
        if not self._closed:
            self.sign_in = as_trait(prompt)

    def close(self) -> None:
        self._closed = True
        stop = getattr(self, "_stop_listening", None)
        if stop is not None:
            stop()
        for fut in list(getattr(self, "_tasks", ())):
            fut.cancel()
        super().close()

    def static_html(self, last_lines: int = 20) -> str:
        """A self-contained snapshot for nbconvert and GitHub: escaped, no script."""
        e = html.escape
        rows: list[str] = []
        for n in sorted(self._logs):
            rows.extend(f"[{n}] {_ANSI.sub('', text)}" for text in self._logs[n].tail(last_lines))
        tail = "\n".join(rows[-last_lines:])
        err = self.error.get("message", "") if self.error else ""
        parts = [
            f"<div><b>Run {e(self.run_name)}</b> · task {e(self.task_name)} · "
            f"<b>{e(self.phase.upper())}</b> · attempts {self.attempts}",
            f" · {e(_elapsed_text(self.start_ms, self.end_ms))}</div>",
        ]
        if err:
            parts.append(f"<pre style='color:#b00'>{e(err)}</pre>")
        if self.outputs:
            parts.append(f"<pre>{e(self.outputs)}</pre>")
        if tail:
            parts.append(f"<pre style='max-height:20em;overflow:auto'>{e(tail)}</pre>")
        if len(self._tree.nodes) > 1:
            parts.append(self._tree.static_html())
        return "".join(parts)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle: Any = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data["text/plain"] = repr(self.run)
        data["text/html"] = self.static_html()
        return bundle


def _elapsed_text(start_ms: float, end_ms: float) -> str:
    if not start_ms:
        return "not started"
    end = end_ms or time.time() * 1000
    from ..remote.console import format_duration

    return format_duration(max(0.0, (end - start_ms) / 1000))


def _error_dict(details: run_definition_pb2.ActionDetails) -> dict[str, str]:
    if details.HasField("error_info"):
        err = details.error_info
        kind = run_definition_pb2.ErrorInfo.Kind.Name(err.kind).removeprefix("KIND_")
        return {"kind": kind, "code": error_code(err), "message": err.message}
    if details.HasField("abort_info"):
        return {"kind": "ABORTED", "code": "", "message": details.abort_info.reason or "aborted"}
    return {}
