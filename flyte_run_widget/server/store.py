"""Durable state in SQLite: runs and their actions (a tree: the root ``a0`` and the children
tasks enqueue) as serialized protos, plus the columns that ListRuns and ListActions filter and
sort on, a change number per write (the change feeds follow it), and each attempt's process id
(so that a later service can tell whether an attempt's process outlived its predecessor).

    store = Store(Path("data/state.db"))
    store.insert_run(new_run)
    row = store.get_run("rabc123def")
    store.insert_child(details, input_uri, output_base)
    row = store.get_action("rabc123def", "x1y2z3")
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flyteidl2.task import common_pb2, run_pb2
from flyteidl2.workflow import run_definition_pb2

from ..common import phase as phases
from ..common.idl import new_run

ROOT_ACTION = "a0"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    name TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    project TEXT NOT NULL,
    domain TEXT NOT NULL,
    phase INTEGER NOT NULL,
    task_name TEXT NOT NULL,
    task_version TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_seq INTEGER NOT NULL,
    run_spec BLOB NOT NULL,
    inputs BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at, name);
CREATE INDEX IF NOT EXISTS runs_updated ON runs (updated_seq);
CREATE TABLE IF NOT EXISTS actions (
    run TEXT NOT NULL,
    name TEXT NOT NULL,
    phase INTEGER NOT NULL,
    details BLOB NOT NULL,
    outputs BLOB,
    PRIMARY KEY (run, name)
);
CREATE TABLE IF NOT EXISTS attempts (
    run TEXT NOT NULL,
    action TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    pid INTEGER,
    pid_start TEXT,
    PRIMARY KEY (run, action, attempt)
);
"""

# Columns added with child actions; a data folder from before gets them on open.
_ACTION_COLUMNS = {
    "parent": "TEXT NOT NULL DEFAULT ''",
    "grp": "TEXT NOT NULL DEFAULT ''",
    "seq": "INTEGER NOT NULL DEFAULT 0",
    "input_uri": "TEXT NOT NULL DEFAULT ''",
    "output_base": "TEXT NOT NULL DEFAULT ''",
    "summary": "BLOB",  # the rd.Action (id, metadata, status): what lists send, without the spec
}
_INDEXES = """
CREATE INDEX IF NOT EXISTS actions_parent ON actions (run, parent, seq);
CREATE INDEX IF NOT EXISTS actions_seq ON actions (run, seq);
-- ListActions pages in creation order: without it each page sorted the whole run (10,000
-- actions: 100 pages in 5.9 s; with it 0.2 s).
CREATE INDEX IF NOT EXISTS actions_run ON actions (run);
"""


def summary_of(details: run_definition_pb2.ActionDetails) -> run_definition_pb2.Action:
    return run_definition_pb2.Action(id=details.id, metadata=details.metadata, status=details.status)


@dataclass
class RunRow:
    """One run as stored: its identity columns, spec, inputs and one of its actions (the root
    ``a0`` from ``get_run``; any action from ``get_action``). A child action's inputs are the
    file its parent wrote (``input_uri``), its outputs under ``output_base``."""

    name: str
    org: str
    project: str
    domain: str
    created_at_ns: int
    run_spec: run_pb2.RunSpec
    details: run_definition_pb2.ActionDetails
    inputs: bytes
    outputs: bytes | None
    parent: str = ""
    group: str = ""
    input_uri: str = ""
    output_base: str = ""
    seq: int = 0

    def run(self) -> run_definition_pb2.Run:
        d = self.details
        action = run_definition_pb2.Action(id=d.id, metadata=d.metadata, status=d.status)
        return new_run(action, self.run_spec.labels.values)

    def inputs_proto(self) -> common_pb2.Inputs:
        if self.details.id.name != ROOT_ACTION:
            try:
                return common_pb2.Inputs.FromString(local_path(self.input_uri).read_bytes())
            except (OSError, ValueError):
                return common_pb2.Inputs()  # gone, or not this service's to read
        return common_pb2.Inputs.FromString(self.inputs)

    def outputs_proto(self) -> common_pb2.Outputs:
        return common_pb2.Outputs.FromString(self.outputs or b"")


@dataclass
class Query:
    """A ListRuns query already checked by the caller: SQL conditions with their parameters."""

    where: list[str]
    params: list[object]
    order_by: str
    offset: int
    limit: int


class Store:
    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        # The service is one event loop in one thread; autocommit keeps each write durable.
        self._db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        have = {r[1] for r in self._db.execute("PRAGMA table_info(actions)")}
        for column, kind in _ACTION_COLUMNS.items():
            if column not in have:
                self._db.execute(f"ALTER TABLE actions ADD COLUMN {column} {kind}")
        self._db.executescript(_INDEXES)
        row = self._db.execute(
            "SELECT MAX((SELECT COALESCE(MAX(updated_seq), 0) FROM runs),"
            " (SELECT COALESCE(MAX(seq), 0) FROM actions))"
        ).fetchone()
        self._seq = int(row[0])

    def close(self) -> None:
        self._db.close()

    @property
    def db(self) -> sqlite3.Connection:
        """For the action-tree queries (``actions.py``)."""
        return self._db

    @property
    def seq(self) -> int:
        """The latest change number (runs and actions share one counter); WatchRuns asks for
        runs changed after one, WatchActions and StateService.Watch for actions."""
        return self._seq

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def insert_run(
        self,
        details: run_definition_pb2.ActionDetails,
        run_spec: run_pb2.RunSpec,
        inputs: common_pb2.Inputs,
        created_at_ns: int,
    ) -> bool:
        """Store a new run with its root action; False when the name is taken."""
        rid = details.id.run
        meta = details.metadata
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute(
                    "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        rid.name,
                        rid.org,
                        rid.project,
                        rid.domain,
                        int(details.status.phase),
                        meta.task.id.name,
                        meta.task.id.version,
                        meta.executed_by.user.id.subject,
                        created_at_ns,
                        self._next_seq(),
                        run_spec.SerializeToString(),
                        inputs.SerializeToString(),
                    ),
                )
                self._insert_action(details, "", "")
        except sqlite3.IntegrityError:
            return False
        return True

    def _insert_action(
        self, details: run_definition_pb2.ActionDetails, input_uri: str, output_base: str
    ) -> None:
        meta = details.metadata
        self._db.execute(
            "INSERT INTO actions (run, name, phase, details, outputs, parent, grp, seq, input_uri,"
            " output_base, summary) VALUES (?,?,?,?,NULL,?,?,?,?,?,?)",
            (
                details.id.run.name,
                details.id.name,
                int(details.status.phase),
                details.SerializeToString(),
                meta.parent,
                meta.group,
                self._next_seq(),
                input_uri,
                output_base,
                summary_of(details).SerializeToString(),
            ),
        )

    def insert_child(
        self, details: run_definition_pb2.ActionDetails, input_uri: str, output_base: str
    ) -> bool:
        """Store a child action (its parent and group are in ``details.metadata``); False when
        the run already has an action of that name."""
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._insert_action(details, input_uri, output_base)
        except sqlite3.IntegrityError:
            return False
        return True

    def save_action(
        self, details: run_definition_pb2.ActionDetails, outputs: common_pb2.Outputs | None = None
    ) -> None:
        """Write an action's new state; the root action's phase is also the run's."""
        self.save_actions([details], outputs)

    def save_actions(
        self, many: list[run_definition_pb2.ActionDetails], outputs: common_pb2.Outputs | None = None
    ) -> None:
        """``save_action`` for each, in one transaction (aborting thousands of queued children)."""
        with self._db:
            self._db.execute("BEGIN")
            for details in many:
                self._update(details, outputs)

    def _update(self, details: run_definition_pb2.ActionDetails, outputs: common_pb2.Outputs | None) -> None:
        run = details.id.run.name
        phase = int(details.status.phase)
        blob = outputs.SerializeToString() if outputs is not None else None
        self._db.execute(
            "UPDATE actions SET phase=?, details=?, outputs=COALESCE(?, outputs), seq=?, summary=?"
            " WHERE run=? AND name=?",
            (
                phase,
                details.SerializeToString(),
                blob,
                self._next_seq(),
                summary_of(details).SerializeToString(),
                run,
                details.id.name,
            ),
        )
        if details.id.name == ROOT_ACTION:
            self._db.execute(
                "UPDATE runs SET phase=?, updated_seq=? WHERE name=?",
                (phase, self._next_seq(), run),
            )

    def record_process(
        self, run: str, action: str, attempt: int, pid: int | None, pid_start: str | None
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO attempts VALUES (?,?,?,?,?)",
            (run, action, attempt, pid, pid_start),
        )

    def process_of(self, run: str, action: str, attempt: int) -> tuple[int | None, str | None]:
        row = self._db.execute(
            "SELECT pid, pid_start FROM attempts WHERE run=? AND action=? AND attempt=?",
            (run, action, attempt),
        ).fetchone()
        return (row[0], row[1]) if row else (None, None)

    _COLUMNS = (
        "SELECT r.name, r.org, r.project, r.domain, r.created_at, r.run_spec, a.details,"
        " r.inputs, a.outputs, a.parent, a.grp, a.input_uri, a.output_base, a.seq FROM runs r"
    )
    _SELECT = _COLUMNS + " JOIN actions a ON a.run = r.name AND a.name = '" + ROOT_ACTION + "'"
    _SELECT_ANY = _COLUMNS + " JOIN actions a ON a.run = r.name"

    @staticmethod
    def _row(row: Any) -> RunRow:
        return RunRow(
            name=str(row[0]),
            org=str(row[1]),
            project=str(row[2]),
            domain=str(row[3]),
            created_at_ns=int(row[4]),
            run_spec=run_pb2.RunSpec.FromString(row[5]),
            details=run_definition_pb2.ActionDetails.FromString(row[6]),
            inputs=bytes(row[7]),
            outputs=bytes(row[8]) if row[8] is not None else None,
            parent=str(row[9]),
            group=str(row[10]),
            input_uri=str(row[11]),
            output_base=str(row[12]),
            seq=int(row[13]),
        )

    def get_run(self, name: str) -> RunRow | None:
        row = self._db.execute(self._SELECT + " WHERE r.name = ?", (name,)).fetchone()
        return self._row(row) if row else None

    def list_runs(self, query: Query) -> list[RunRow]:
        sql = self._SELECT
        if query.where:
            sql += " WHERE " + " AND ".join(query.where)
        sql += f" ORDER BY {query.order_by} LIMIT ? OFFSET ?"
        rows = self._db.execute(sql, [*query.params, query.limit, query.offset]).fetchall()
        return [self._row(r) for r in rows]

    def changed_since(self, seq: int, limit: int = -1) -> list[tuple[int, RunRow]]:
        """Runs changed after change number ``seq``, oldest change first, each with its
        latest change number (at most ``limit``; -1 for all)."""
        sql = self._SELECT.replace("SELECT ", "SELECT r.updated_seq, ", 1)
        sql += " WHERE r.updated_seq > ? ORDER BY r.updated_seq LIMIT ?"
        rows = self._db.execute(sql, (seq, limit)).fetchall()
        return [(int(r[0]), self._row(r[1:])) for r in rows]

    def get_action(self, run: str, name: str) -> RunRow | None:
        row = self._db.execute(self._SELECT_ANY + " WHERE r.name = ? AND a.name = ?", (run, name)).fetchone()
        return self._row(row) if row else None

    def get_details(self, run: str, name: str) -> run_definition_pb2.ActionDetails | None:
        """An action's details alone (no run spec, inputs or outputs)."""
        row = self._db.execute(
            "SELECT details FROM actions WHERE run = ? AND name = ?", (run, name)
        ).fetchone()
        return run_definition_pb2.ActionDetails.FromString(row[0]) if row else None

    def unfinished(self) -> Iterator[RunRow]:
        """Every action not final, of every run: parents before their children."""
        rows = self._db.execute(self._SELECT_ANY + f" WHERE a.phase NOT IN ({TERMINAL_SQL}) ORDER BY a.rowid")
        for row in rows.fetchall():
            yield self._row(row)


TERMINAL_SQL = ",".join(str(p) for p in sorted(phases.TERMINAL_PHASES))


def local_path(uri: str) -> Path:
    """A ``file://`` URI or plain path as a path; any other scheme is refused (ValueError)."""
    if uri.startswith("file://"):
        return Path(uri[len("file://") :])
    if "://" in uri:
        raise ValueError(f"{uri!r} is not a local path: this service keeps data on its own disk")
    return Path(uri)
