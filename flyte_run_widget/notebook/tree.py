"""A run's action tree in the kernel: what WatchActions (or ListActions) said about each action,
and the compact messages that bring changes to the views.

    tree = ActionTree()
    tree.merge(enriched_actions)       # True if anything the views show changed
    for msg in tree.drain(): widget.send(msg)   # only what changed since the last drain
    for msg in tree.replay(): ...      # everything, for a view that rendered late

Each action gets a small number (its row) the first time it is seen; messages refer to parents by
row, carry names, groups and task names once (and again only if they change) and phases, times
and attempts as columns, so a change to one action of 10,000 costs a few bytes.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from flyteidl2.workflow import run_definition_pb2

from ..common.phase import friendly_phase

#: Actions per message at most: one message is one task on the browser's main thread.
MAX_ROWS_PER_MESSAGE = 5_000
#: Actions listed by name in the static snapshot of a saved notebook (all are counted).
STATIC_ROWS = 200


@dataclass
class Node:
    name: str
    parent: int = -1  # row of the parent; -1 for the root
    group: str = ""
    task: str = ""
    phase: int = 0
    start_ms: float = 0.0
    end_ms: float = 0.0
    attempts: int = 0
    detailed: bool = False  # metadata beyond id, parent and phase is known
    children: list[int] = field(default_factory=list)


class ActionTree:
    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.nodes: list[Node] = []
        self._ident: set[int] = set()  # rows whose name, parent, group or task the views lack
        self._state: set[int] = set()  # rows whose phase, times or attempts the views lack

    def row(self, name: str) -> int:
        """The row of ``name``, made (as a placeholder) if it was not seen yet: a child may
        arrive in an earlier batch than its parent."""
        row = self.rows.get(name)
        if row is None:
            row = self.rows[name] = len(self.nodes)
            self.nodes.append(Node(name))
            self._ident.add(row)
            self._state.add(row)
        return row

    def merge(self, enriched: Iterable[run_definition_pb2.EnrichedAction]) -> bool:
        changed = False
        for e in enriched:
            changed = self.merge_action(e.action) or changed
        return changed

    def merge_action(self, action: run_definition_pb2.Action) -> bool:
        """Take what the message holds. The flyte backend's watch updates fill only id, parent
        and phase, so an empty field never erases what an earlier message or details said.
        Run for every action of a snapshot (10,000 and more): plain comparisons, no tuples or
        protobuf helper calls."""
        rows = self.rows
        name = action.id.name
        row = rows.get(name)
        if row is None:
            row = self.row(name)
        node = self.nodes[row]
        meta, status = action.metadata, action.status
        ident = False
        parent = meta.parent
        if parent and node.parent == -1:
            up = rows.get(parent)
            if up is None:
                up = self.row(parent)
            node.parent = up
            self.nodes[up].children.append(row)
            ident = True
        group = meta.group
        if group and group != node.group:
            node.group = group
            ident = True
        if meta.HasField("task"):
            task = meta.task.short_name or meta.task.id.name
            if task and task != node.task:
                node.task = task
                ident = True
            node.detailed = True
        state = False
        phase = status.phase
        if phase and phase != node.phase:
            node.phase = phase
            state = True
        if status.HasField("start_time"):
            ts = status.start_time
            ms = float(ts.seconds * 1000 + ts.nanos // 1_000_000)
            if ms != node.start_ms:
                node.start_ms = ms
                state = True
        if status.HasField("end_time"):
            ts = status.end_time
            ms = float(ts.seconds * 1000 + ts.nanos // 1_000_000)
            if ms != node.end_ms:
                node.end_ms = ms
                state = True
        attempts = status.attempts
        if attempts and attempts != node.attempts:
            node.attempts = attempts
            state = True
        if ident:
            self._ident.add(row)
        if state:
            self._state.add(row)
        return ident or state or row in self._ident or row in self._state

    def merge_details(self, details: run_definition_pb2.ActionDetails) -> bool:
        return self.merge_action(
            run_definition_pb2.Action(id=details.id, metadata=details.metadata, status=details.status)
        )

    # -- messages ---------------------------------------------------------------------------

    def pending(self) -> bool:
        return bool(self._ident or self._state)

    def drain(self) -> Iterator[dict[str, Any]]:
        """Messages with every change since the last drain, then forget those changes."""
        ident, state = sorted(self._ident), sorted(self._state | self._ident)
        self._ident, self._state = set(), set()
        yield from self._messages(ident, state)

    def replay(self) -> Iterator[dict[str, Any]]:
        """Messages with the whole tree (a view that rendered late asks for it)."""
        every = list(range(len(self.nodes)))
        yield from self._messages(every, every)

    def _messages(self, ident: list[int], state: list[int]) -> Iterator[dict[str, Any]]:
        ident_set = set(ident)
        for start in range(0, len(state), MAX_ROWS_PER_MESSAGE):
            part = state[start : start + MAX_ROWS_PER_MESSAGE]
            known = [r for r in part if r in ident_set]
            nodes = self.nodes
            base = min((nodes[r].start_ms for r in part if nodes[r].start_ms), default=0.0)
            yield {
                "type": "tree",
                "size": len(nodes),
                # identity: row, name, parent row, group, task, details known (0/1)
                "k": known,
                "n": [nodes[r].name for r in known],
                "p": [nodes[r].parent for r in known],
                "g": [nodes[r].group for r in known],
                "t": [nodes[r].task for r in known],
                "d": [int(nodes[r].detailed) for r in known],
                # state: row, phase, start and end (ms after base; -1: none), attempts
                "i": part,
                "b": base,
                "ph": [nodes[r].phase for r in part],
                "s": [_offset(nodes[r].start_ms, base) for r in part],
                "e": [_offset(nodes[r].end_ms, base) for r in part],
                "a": [nodes[r].attempts for r in part],
            }

    # -- summaries --------------------------------------------------------------------------

    def phase_counts(self) -> dict[str, int]:
        return dict(Counter(friendly_phase(n.phase) for n in self.nodes))

    def static_html(self) -> str:
        """The tree for a saved notebook: phase counts, then the first actions, indented."""
        if not self.nodes:
            return ""
        e = html.escape
        counts = " · ".join(f"{e(p)} {n}" for p, n in sorted(self.phase_counts().items()))
        lines: list[str] = []
        roots = [r for r, n in enumerate(self.nodes) if n.parent == -1]
        stack = [(r, 0) for r in reversed(roots)]
        while stack and len(lines) < STATIC_ROWS:
            row, depth = stack.pop()
            node = self.nodes[row]
            group = f" [{node.group}]" if node.group else ""
            lines.append(f"{'  ' * depth}{node.name}{group} {friendly_phase(node.phase).upper()}")
            stack.extend((c, depth + 1) for c in reversed(node.children))
        more = len(self.nodes) - len(lines)
        if more > 0:
            lines.append(f"… {more} more actions")
        return (
            f"<div>Actions: {len(self.nodes)} · {counts}</div>"
            f"<pre style='max-height:20em;overflow:auto'>{e(chr(10).join(lines))}</pre>"
        )


def _offset(ms: float, base: float) -> float:
    return ms - base if ms else -1
