"""A live table of runs in a notebook cell.

    frw.runs(phase="running", limit=500)     # or: frw.Run.listall(...) as a cell's last expression

The table (``RunsGrid``, an anywidget) sits in a ``RunsTable`` box; clicking a row opens that
run's live ``RunWidget`` below it. The table lists the runs once (ListRuns), then, on the
background loop, follows WatchRuns: only rows that changed go to the browser, at most every
FLUSH_INTERVAL, in column-encoded messages (``run_rows.py``). Sorting, filtering and scrolling
happen in the browser, which draws only the visible rows (``js/src/table_view.js``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets
import traitlets as t
from flyteidl2.workflow import run_definition_pb2

from ..client import loop as _loop
from ..client.rpc import Client, get_client
from ..client.watch_runs import follow_runs
from ..common.phase import is_terminal, raw_phase
from ..errors import ArgumentTypeError, ArgumentValueError, FlyteRunWidgetError
from ..remote.run import Run
from .run_rows import Match, RowTable, encode_rows, row_of, static_table_html, text_table

logger = logging.getLogger(__name__)

_STATIC = Path(__file__).parent.parent / "static"
FLUSH_INTERVAL = 0.25
#: Aborts sent to the service at the same time when many runs are aborted together.
ABORT_CONCURRENCY = 16
ABORT_REASON = "Aborted from the runs table"
#: Rows listed before ``frw.runs()`` returns (one ListRuns page); the rest arrive with WatchRuns.
FIRST_ROWS = 100
_MAX_NOTICES = 5


class RunsGrid(anywidget.AnyWidget):
    """The table itself; rows travel as custom messages, everything else in these traits."""

    _esm = _STATIC / "runs_table.js"
    _css = _STATIC / "runs_table.css"

    title = t.Unicode("").tag(sync=True)
    total = t.Int(0).tag(sync=True)
    now_ms = t.Float(0).tag(sync=True)
    opened = t.Unicode("").tag(sync=True)
    busy = t.Unicode("").tag(sync=True)
    notice = t.Unicode("").tag(sync=True)
    connection = t.Dict({"state": "connected", "message": ""}).tag(sync=True)


class RunsTable(ipywidgets.VBox):  # type: ignore[misc]
    """A live runs table with the opened run's widget below it. ``rows`` holds what it shows."""

    def __init__(
        self,
        match: Match,
        limit: int,
        *,
        newest: bool = True,
        title: str = "",
        seed: Iterable[run_definition_pb2.Run] | None = None,
        follow: bool = True,
        client: Client | None = None,
    ) -> None:
        self.grid = RunsGrid(title=title)
        super().__init__(children=[self.grid])
        self._client = client or get_client()
        self._table = RowTable(match, limit, newest)
        self._pb2: dict[str, run_definition_pb2.Run] = {}
        self._tasks: set[concurrent.futures.Future[Any]] = set()
        self._pending = asyncio.Event()
        self._aborting = False
        self._closed = False
        self.detail: Any = None
        if seed is None:
            # The newest page before the table is shown, so that its static snapshot (a saved
            # notebook, nbconvert) holds them and an unreachable service fails the call here. The
            # rest comes with WatchRuns, which starts with every run of the project: a large
            # table paints as fast as a small one.
            _loop.run_sync(self._list(min(limit, FIRST_ROWS)))
        else:
            for run in seed:
                self._offer(run, trusted=True)
        self.grid.total = len(self._table.rows)
        self.grid.on_msg(self._on_frontend_msg)
        if follow:
            self._spawn(self._follow(), "following the runs")
            self._spawn(self._flusher(), "sending rows to the view")

    @property
    def rows(self) -> dict[str, Any]:
        """Name → row (name, task, phase, times, creator) as the kernel holds it now."""
        return dict(self._table.rows)

    # -- background work --------------------------------------------------------------------

    def _spawn(self, coro: Any, what: str) -> None:
        fut = _loop.submit(coro)
        self._tasks.add(fut)
        fut.add_done_callback(functools.partial(self._task_done, what))

    def _task_done(self, what: str, fut: concurrent.futures.Future[Any]) -> None:
        self._tasks.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            error = fut.exception()
            logger.error("runs table: %s stopped", what, exc_info=error)
            self._add_notice(
                f"{what} stopped after an unexpected error ({type(error).__name__}: {error});"
                " flyte_run_widget.runs() starts a fresh table"
            )

    def _add_notice(self, text: str) -> None:
        kept = [line for line in self.grid.notice.split("\n") if line and line != text]
        self.grid.notice = "\n".join([*kept, text][-_MAX_NOTICES:])

    def _set_connection(self, state: str, message: str) -> None:
        self.grid.connection = {"state": state, "message": message}

    def _offer(self, run: run_definition_pb2.Run, *, trusted: bool = False) -> bool:
        if self._table.offer(row_of(run), trusted=trusted):
            self._pb2[run.action.id.run.name] = run
            return True
        return False

    async def _follow(self) -> None:
        try:
            self._pending.set()  # the first rows
            stream = follow_runs(self._client, self._set_connection)
            async for runs in stream:
                if any([self._offer(run) for run in runs]):
                    self._pending.set()
        except FlyteRunWidgetError as e:
            logger.error("runs table: stopped following the runs: %s", e)
            self._set_connection("closed", str(e))

    async def _list(self, enough: int) -> None:
        """The rows the table starts with (until it holds ``enough``), from ListRuns with the
        service doing the filtering; a task given by its short name is matched here instead (the
        service knows full names)."""
        match, table = self._table.match, self._table
        task = match.task or None
        for server_task in (task, None) if task else (None,):
            async for run in Run.listall.aio(
                in_phase=sorted(match.phases) or None,
                task_name=server_task,
                created_by_subject=match.user or None,
                sort_by=("created_at", "desc" if table.newest else "asc"),
                limit=enough if server_task or not task else 2**62,
            ):
                self._offer(run.pb2)
                if len(table.rows) >= enough:
                    return
            if table.rows:
                return

    async def _flusher(self) -> None:
        # Sleeps until there is something to send; then waits one interval to gather a batch:
        # a burst of changes costs a few messages a second, never one per change.
        while not self._closed:
            await self._pending.wait()
            await asyncio.sleep(FLUSH_INTERVAL)
            self._pending.clear()
            self._flush()

    def _flush(self) -> None:
        changed, dropped = self._table.take_changes()
        for name in dropped:
            self._pb2.pop(name, None)
        rows = self._table.rows
        if changed or dropped:
            self._send_rows([rows[n] for n in changed if n in rows], dropped)
        with self.grid.hold_sync():
            self.grid.total = len(rows)
            self.grid.now_ms = time.time() * 1000

    def _send_rows(self, rows: list[Any], dropped: list[str], reset: bool = False) -> None:
        for content, buffers in encode_rows(rows, dropped, reset=reset):
            self.grid.send(content, buffers=buffers)

    # -- messages from the views -------------------------------------------------------------

    def _on_frontend_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        # Runs on the kernel's main thread. The rows belong to the background loop; opening a
        # run's widget makes a new comm, which belongs here.
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "open":
            self.open_run(str(content.get("name", "")))
        elif kind in ("sync", "abort"):
            _loop.get_loop().call_soon_threadsafe(self._handle_on_loop, content)

    def _handle_on_loop(self, content: dict[str, Any]) -> None:
        try:
            if content.get("type") == "sync":
                self._send_rows(list(self._table.rows.values()), [], reset=True)
            else:
                names = content.get("names")
                if isinstance(names, list):
                    self._request_abort([str(n) for n in names[:100_000]])
        except Exception as e:  # a callback on the loop: an error here would only reach asyncio
            logger.error("runs table: answering a %r message failed", content.get("type"), exc_info=e)
            self._add_notice(f"answering the view failed ({type(e).__name__}: {e})")

    def open_run(self, name: str) -> None:
        """Show the run's live widget below the table; the opened run again closes it."""
        pb2 = self._pb2.get(name)
        old = self.detail
        if old is not None:
            self.detail = None
            old.close()
        if pb2 is None or (old is not None and old.run.name == name):
            self.grid.opened = ""
            self.children = [self.grid]
            return
        run = Run(run_definition_pb2.Run.FromString(pb2.SerializeToString()), _client=self._client)
        from .widget import RunWidget

        self.detail = RunWidget(run)
        self.grid.opened = name
        self.children = [self.grid, self.detail]

    def _request_abort(self, names: list[str]) -> None:
        targets = [n for n in names if n in self._pb2 and not is_terminal(self._table.rows[n].phase)]
        if self._aborting or not targets:
            return
        self._aborting = True
        self.grid.busy = f"aborting {len(targets)} run{'s' if len(targets) != 1 else ''}"
        self._spawn(self._abort(targets), "aborting runs")

    async def _abort(self, names: list[str]) -> None:
        gate = asyncio.Semaphore(ABORT_CONCURRENCY)

        async def one(name: str) -> str:
            async with gate:
                try:
                    # A copy: Run.abort refreshes its pb2, and the held one may be read on the
                    # kernel's main thread (open_run) meanwhile.
                    pb2 = run_definition_pb2.Run()
                    pb2.CopyFrom(self._pb2[name])
                    await Run(pb2, _client=self._client).abort.aio(reason=ABORT_REASON)
                except FlyteRunWidgetError as e:
                    return f"{name}: {e}"
            return ""

        try:
            failed = [f for f in await asyncio.gather(*(one(n) for n in names)) if f]
            if failed:
                more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
                listed = "; ".join(failed[:3])
                self._add_notice(f"abort failed for {len(failed)} of {len(names)} runs: {listed}{more}")
        finally:
            self._aborting = False
            self.grid.busy = ""

    def abort(self, names: Iterable[str]) -> None:
        """Abort these runs of the table together, as the view's "Abort selected" does."""
        _loop.get_loop().call_soon_threadsafe(self._request_abort, list(names))

    # -- lifecycle and static output ---------------------------------------------------------

    def close(self) -> None:
        self._closed = True
        for fut in list(getattr(self, "_tasks", ())):
            fut.cancel()
        if getattr(self, "detail", None) is not None:
            self.detail.close()
        if hasattr(self, "grid"):
            self.grid.close()
        super().close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle: Any = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        rows = list(self._table.rows.values())
        title = self.grid.title or "runs"
        data["text/plain"] = f"{title}: {len(rows)} runs\n" + text_table(_newest(rows, 20))
        data["text/html"] = static_table_html(rows, f"{title}: {len(rows):,} runs")
        return bundle


def _newest(rows: list[Any], n: int) -> list[Any]:
    return sorted(rows, key=lambda r: r.order, reverse=True)[:n]


def _phases(phase: str | int | Iterable[str | int] | None) -> frozenset[int]:
    if phase is None:
        return frozenset()
    items = [phase] if isinstance(phase, (str, int)) else list(phase)
    return frozenset(raw_phase(p) for p in items)


def runs(
    phase: str | int | Iterable[str | int] | None = None,
    task: str | None = None,
    limit: int = 1000,
    *,
    created_by: str | None = None,
) -> RunsTable:
    """A live table of the newest ``limit`` runs of the configured project, optionally only
    those in ``phase`` (a name such as ``"running"``, or several) or of ``task`` (full or short
    name). Runs already shown stay and follow their changes when they leave the filter."""
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise ArgumentTypeError(f"limit must be a whole number, not {limit!r}")
    if limit < 1:
        raise ArgumentValueError(f"limit must be 1 or more, not {limit}")
    if task is not None and not isinstance(task, str):
        raise ArgumentTypeError(f"task must be a task name (str), not {type(task).__name__}")
    match = Match(_phases(phase), task or "", created_by or "")
    from ..common.phase import friendly_phase

    parts = [f"phase {', '.join(sorted(map(friendly_phase, match.phases)))}"] if match.phases else []
    parts += [f"task {task}"] if task else []
    title = "Runs" + (f" ({'; '.join(parts)})" if parts else "")
    return RunsTable(match, limit, title=title)


def table_of_listing(seed: list[run_definition_pb2.Run], query: dict[str, Any]) -> RunsTable:
    """The table a ``Run.listall(**query)`` result shows: its runs, then the changes of those
    runs and the new runs the same query would return."""
    direction = (query.get("sort_by") or ("created_at", "asc"))[1]
    match = Match(
        _phases(query.get("in_phase")), query.get("task_name") or "", query.get("created_by_subject") or ""
    )
    limit = query.get("limit")
    limit = limit if isinstance(limit, int) and limit > 0 else max(len(seed), 1)
    return RunsTable(match, limit, newest=direction == "desc", title="Run.listall", seed=seed)
