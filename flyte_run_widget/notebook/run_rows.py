"""The rows of a runs table in the kernel: which runs it holds, what changed since the views last
heard, and how rows travel to the browser.

    table = RowTable(Match(phases={4}), limit=100)
    table.offer(row_of(pb2))                # from ListRuns or WatchRuns: new, changed or the same
    names, dropped = table.take_changes()   # what the views lack
    for content, buffers in encode_rows([table.rows[n] for n in names], dropped): widget.send(...)

A message carries its rows in columns: names as a JSON list; phase, task and creator as indexes
into per-message lists (a project has few of each) and both times, in two binary buffers: 28
bytes per row besides the name.
"""

from __future__ import annotations

import html
import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from flyteidl2.workflow import run_definition_pb2

from ..common.phase import friendly_phase

#: Rows per message at most: one message is one short task in the browser's main thread.
MAX_ROWS_PER_MESSAGE = 5_000


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    task: str  # short name, as shown
    task_full: str  # the task's full name, what ListRuns filters on
    user: str
    phase: int
    start_ms: float
    end_ms: float

    @property
    def order(self) -> tuple[float, str]:
        return (self.start_ms, self.name)


def row_of(run: run_definition_pb2.Run) -> Row:
    action = run.action
    meta, status = action.metadata, action.status
    user = meta.executed_by.user
    return Row(
        name=action.id.run.name,
        task=meta.task.short_name or meta.task.id.name,
        task_full=meta.task.id.name,
        user=user.spec.user_handle or user.id.subject or meta.executed_by.application.id.subject,
        phase=int(status.phase),
        start_ms=float(status.start_time.ToMilliseconds()) if status.HasField("start_time") else 0.0,
        end_ms=float(status.end_time.ToMilliseconds()) if status.HasField("end_time") else 0.0,
    )


@dataclass(frozen=True)
class Match:
    """Which runs a table takes in: the filters of ``frw.runs`` or of a ``Run.listall`` call.
    ``task`` matches the task's full or short name."""

    phases: frozenset[int] = frozenset()
    task: str = ""
    user: str = ""

    def __call__(self, row: Row) -> bool:
        return (
            (not self.phases or row.phase in self.phases)
            and (not self.task or self.task in (row.task_full, row.task))
            and (not self.user or self.user == row.user)
        )


@dataclass
class RowTable:
    """At most ``limit`` runs: the newest ones that match (the oldest with ``newest=False``).

    A run already in the table stays and follows its changes even when it no longer matches (a
    table of running runs shows them finish); a new run comes in only if it matches and is
    among the ``limit`` newest (oldest). Not thread-safe: one thread (the background loop)
    changes it; other threads only copy ``rows`` (``list(d.values())`` is one C-level step)."""

    match: Match
    limit: int
    newest: bool = True
    rows: dict[str, Row] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    dropped: set[str] = field(default_factory=set)
    _unsent: set[str] = field(default_factory=set)  # came in since the last take_changes
    _edge: tuple[float, str] | None = None  # order of the row the next admission would drop

    def offer(self, row: Row, *, trusted: bool = False) -> bool:
        """Take in a run as it is now; True if the views must hear about it. ``trusted``: the
        row is a listing's own result, already filtered by the service."""
        old = self.rows.get(row.name)
        if old is not None:
            if old == row:
                return False
            self.rows[row.name] = row
            self._edge = None
            self.changed.add(row.name)
            return True
        if not trusted and not self.match(row):
            return False
        if len(self.rows) >= self.limit:
            edge = self._edge_order()
            if (row.order <= edge) if self.newest else (row.order >= edge):
                return False
            self._drop(edge[1])
        self.rows[row.name] = row
        self.changed.add(row.name)
        if row.name in self.dropped:
            self.dropped.discard(row.name)
        else:
            self._unsent.add(row.name)
        self._edge = None
        return True

    def _edge_order(self) -> tuple[float, str]:
        # Cached: a snapshot of thousands of older runs is then rejected in O(1) each.
        if self._edge is None:
            orders = (r.order for r in self.rows.values())
            self._edge = min(orders) if self.newest else max(orders)
        return self._edge

    def _drop(self, name: str) -> None:
        del self.rows[name]
        self.changed.discard(name)
        if name in self._unsent:  # the views never heard of it
            self._unsent.discard(name)
        else:
            self.dropped.add(name)
        self._edge = None

    def take_changes(self) -> tuple[list[str], list[str]]:
        changed, dropped = sorted(self.changed), sorted(self.dropped)
        self.changed.clear()
        self.dropped.clear()
        self._unsent.clear()
        return changed, dropped


def encode_rows(
    rows: list[Row], dropped: Iterable[str] = (), *, reset: bool = False
) -> Iterator[tuple[dict[str, object], list[bytes]]]:
    """The ``rows`` messages for these rows, each within MAX_ROWS_PER_MESSAGE: content and two
    buffers, ``meta`` (uint32 indexes into the message's phase, task and creator
    lists, per row) and ``times`` (float64
    start and end in ms per row). ``reset`` (first message only): the views drop what they hold."""
    dropped = list(dropped)
    starts = range(0, max(len(rows), 1), MAX_ROWS_PER_MESSAGE)
    for n, start in enumerate(starts):
        part = rows[start : start + MAX_ROWS_PER_MESSAGE]
        phases: dict[str, int] = {}
        tasks: dict[str, int] = {}
        users: dict[str, int] = {}
        meta: list[int] = []
        times: list[float] = []
        for r in part:
            meta += (
                phases.setdefault(friendly_phase(r.phase), len(phases)),
                tasks.setdefault(r.task, len(tasks)),
                users.setdefault(r.user, len(users)),
            )
            times += (r.start_ms, r.end_ms)
        content: dict[str, object] = {
            "type": "rows",
            "reset": reset and n == 0,
            "names": [r.name for r in part],
            "phases": list(phases),
            "tasks": list(tasks),
            "users": list(users),
            "drop": dropped if n == 0 else [],
        }
        yield content, [struct.pack(f"<{len(meta)}I", *meta), struct.pack(f"<{len(times)}d", *times)]


def _when(ms: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else ""


def _duration(row: Row, now_ms: float) -> str:
    from ..remote.console import format_duration

    if not row.start_ms:
        return ""
    return format_duration(max(0.0, ((row.end_ms or now_ms) - row.start_ms) / 1000))


def static_table_html(rows: list[Row], title: str, max_rows: int = 50) -> str:
    """A self-contained snapshot of the newest rows for nbconvert and GitHub: escaped, no script."""
    e = html.escape
    now = time.time() * 1000
    shown = sorted(rows, key=lambda r: r.order, reverse=True)[:max_rows]
    head = "".join(f"<th>{c}</th>" for c in ("name", "task", "phase", "started", "duration", "created by"))
    body = "".join(
        f"<tr><td>{e(r.name)}</td><td>{e(r.task)}</td><td>{e(friendly_phase(r.phase))}</td>"
        f"<td>{e(_when(r.start_ms))}</td><td>{e(_duration(r, now))}</td><td>{e(r.user)}</td></tr>"
        for r in shown
    )
    more = f"<div>… and {len(rows) - len(shown):,} more</div>" if len(rows) > len(shown) else ""
    return f"<div><b>{e(title)}</b><table><tr>{head}</tr>{body}</table>{more}</div>"


def text_table(rows: list[Row]) -> str:
    """The rows as plain text, newest first: what a terminal or ``text/plain`` shows."""
    now = time.time() * 1000
    shown = sorted(rows, key=lambda r: r.order, reverse=True)
    lines = [f"{'name':<12} {'task':<20} {'phase':<12} {'started':<19} {'duration':>9} created by"]
    lines += [
        f"{r.name:<12} {r.task[:20]:<20} {friendly_phase(r.phase):<12} {_when(r.start_ms):<19} "
        f"{_duration(r, now):>9} {r.user}"
        for r in shown
    ]
    return "\n".join(lines)
