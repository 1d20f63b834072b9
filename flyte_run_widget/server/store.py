"""Durable state in SQLite: runs and their actions as serialized protos, plus the columns
that ListRuns filters and sorts on, and each attempt's process id (so that a later service
can tell whether an attempt's process outlived its predecessor).

    store = Store(Path("data/state.db"))
    store.insert_run(new_run)
    row = store.get_run("rabc123def")
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


@dataclass
class RunRow:
    """One run as stored: its identity columns, spec, inputs and root action."""

    name: str
    org: str
    project: str
    domain: str
    created_at_ns: int
    run_spec: run_pb2.RunSpec
    details: run_definition_pb2.ActionDetails
    inputs: bytes
    outputs: bytes | None

    def run(self) -> run_definition_pb2.Run:
        d = self.details
        action = run_definition_pb2.Action(id=d.id, metadata=d.metadata, status=d.status)
        return new_run(action, self.run_spec.labels.values)

    def inputs_proto(self) -> common_pb2.Inputs:
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
        row = self._db.execute("SELECT COALESCE(MAX(updated_seq), 0) FROM runs").fetchone()
        self._seq = int(row[0])

    def close(self) -> None:
        self._db.close()

    @property
    def seq(self) -> int:
        """The latest change number; WatchRuns asks for runs changed after one."""
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
                self._db.execute(
                    "INSERT INTO actions VALUES (?,?,?,?,NULL)",
                    (rid.name, details.id.name, int(details.status.phase), details.SerializeToString()),
                )
        except sqlite3.IntegrityError:
            return False
        return True

    def save_action(
        self, details: run_definition_pb2.ActionDetails, outputs: common_pb2.Outputs | None = None
    ) -> None:
        """Write an action's new state; the root action's phase is also the run's."""
        run = details.id.run.name
        phase = int(details.status.phase)
        blob = outputs.SerializeToString() if outputs is not None else None
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "UPDATE actions SET phase=?, details=?, outputs=COALESCE(?, outputs) WHERE run=? AND name=?",
                (phase, details.SerializeToString(), blob, run, details.id.name),
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

    _SELECT = (
        "SELECT r.name, r.org, r.project, r.domain, r.created_at, r.run_spec, a.details,"
        " r.inputs, a.outputs FROM runs r JOIN actions a ON a.run = r.name AND a.name = '" + ROOT_ACTION + "'"
    )

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

    def unfinished(self) -> Iterator[RunRow]:
        terminal = ",".join(str(p) for p in sorted(phases.TERMINAL_PHASES))
        rows = self._db.execute(self._SELECT + f" WHERE a.phase NOT IN ({terminal})").fetchall()
        for row in rows:
            yield self._row(row)
