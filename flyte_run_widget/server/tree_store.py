"""Queries over a run's tree of actions, beside ``store.Store`` (which writes them).

actions = list_actions(store, "rabc", parent="a0", phases=[RUNNING], offset=0, limit=100)
for seq, name, parent, phase, summary in changed_actions(store, "rabc", after=0, limit=100): ...
counts = children_phase_counts(store, "rabc")        # {"a0": {RUNNING: 3, SUCCEEDED: 47}}
names = open_subtree(store, "rabc", "x1")            # "x1" and its descendants not yet final
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from flyteidl2.workflow import run_definition_pb2 as rd

from .store import TERMINAL_SQL, Store


@dataclass(frozen=True, slots=True)
class Change:
    """One action as its latest write left it: what the change feeds send."""

    seq: int
    name: str
    parent: str
    phase: int
    summary: bytes
    output_base: str

    def action(self) -> rd.Action:
        return rd.Action.FromString(self.summary)


_CHANGE = "SELECT seq, name, parent, phase, summary, output_base FROM actions"


def _change(row: tuple[object, ...]) -> Change:
    seq, name, parent, phase, summary, base = row
    return Change(int(seq), str(name), str(parent), int(phase), bytes(summary or b""), str(base))  # type: ignore[call-overload]


def list_actions(
    store: Store, run: str, parent: str | None, phases: list[int], offset: int, limit: int
) -> list[rd.Action]:
    """Actions of ``run`` in the order they were created."""
    sql = "SELECT summary FROM actions WHERE run = ?"
    params: list[object] = [run]
    if parent is not None:
        sql += " AND parent = ?"
        params.append(parent)
    if phases:
        sql += f" AND phase IN ({','.join('?' * len(phases))})"
        params.extend(phases)
    sql += " ORDER BY rowid LIMIT ? OFFSET ?"
    rows = store.db.execute(sql, [*params, limit, offset]).fetchall()
    return [rd.Action.FromString(r[0]) for r in rows]


def changed_actions(
    store: Store, run: str, after: int, limit: int, parent: str | None = None
) -> list[Change]:
    """Actions of ``run`` (children of ``parent`` only, if given) written after change number
    ``after``, oldest change first: each once, as it is now."""
    if parent is None:
        sql, params = _CHANGE + " WHERE run = ? AND seq > ?", [run, after]
    else:
        sql, params = _CHANGE + " WHERE run = ? AND parent = ? AND seq > ?", [run, parent, after]
    rows = store.db.execute(sql + " ORDER BY seq LIMIT ?", [*params, limit]).fetchall()
    return [_change(r) for r in rows]


#: What a change feed sends of an action: (seq, name, parent, phase, summary), as stored.
FeedRow = tuple[int, str, str, int, bytes]
_FEED = "SELECT seq, name, parent, phase, COALESCE(summary, X'') FROM actions"


def feed_rows(store: Store, run: str, after: int, limit: int) -> list[FeedRow]:
    """``changed_actions`` without its per-row object (a snapshot reads every action)."""
    sql = _FEED + " WHERE run = ? AND seq > ? ORDER BY seq LIMIT ?"
    return store.db.execute(sql, (run, after, limit)).fetchall()


def feed_rows_of(store: Store, run: str, names: set[str]) -> list[FeedRow]:
    """The actions ``names`` of ``run`` as they are now (the parents a change feed resends)."""
    if not names:
        return []
    marks = ",".join("?" * len(names))
    sql = _FEED + f" WHERE run = ? AND name IN ({marks})"
    return store.db.execute(sql, [run, *names]).fetchall()


def all_final(store: Store, run: str) -> bool:
    """Whether every action of ``run`` is final (cheaper than an empty ``open_subtree`` of
    its root, which every action descends from)."""
    row = store.db.execute(
        f"SELECT 1 FROM actions WHERE run = ? AND phase NOT IN ({TERMINAL_SQL}) LIMIT 1", (run,)
    ).fetchone()
    return row is None


def children_phase_counts(store: Store, run: str) -> dict[str, dict[int, int]]:
    counts: dict[str, dict[int, int]] = defaultdict(dict)
    rows = store.db.execute(
        "SELECT parent, phase, COUNT(*) FROM actions WHERE run = ? AND parent != '' GROUP BY parent, phase",
        (run,),
    )
    for parent, phase, count in rows.fetchall():
        counts[str(parent)][int(phase)] = int(count)
    return dict(counts)


def open_subtree(store: Store, run: str, name: str) -> list[str]:
    """``name`` and its descendants that are not final, parents before children."""
    rows = store.db.execute(
        "WITH RECURSIVE tree(name, depth) AS (SELECT ?, 0 UNION ALL"
        " SELECT a.name, tree.depth + 1 FROM actions a JOIN tree ON a.run = ? AND a.parent = tree.name)"
        f" SELECT tree.name FROM tree JOIN actions a ON a.run = ? AND a.name = tree.name"
        f" WHERE a.phase NOT IN ({TERMINAL_SQL}) ORDER BY tree.depth",
        (name, run, run),
    ).fetchall()
    return [str(r[0]) for r in rows]


def has_action(store: Store, run: str, name: str) -> bool:
    row = store.db.execute("SELECT 1 FROM actions WHERE run = ? AND name = ?", (run, name)).fetchone()
    return row is not None


def phase_of(store: Store, run: str, name: str) -> int | None:
    row = store.db.execute("SELECT phase FROM actions WHERE run = ? AND name = ?", (run, name)).fetchone()
    return int(row[0]) if row else None
