"""RunService's calls over many runs: ListRuns (pages of a scope, bounded in bytes) and
WatchRuns (the scope's runs now, then each run that changes). A mixin of ``RunService``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_service_pb2 as rs
from grpc.aio import ServicerContext as Context

from . import faults
from .hub import ALL_RUNS
from .listing import build_query

if TYPE_CHECKING:
    from .hub import Hub
    from .store import RunRow, Store

#: A page of runs stops early when it reaches this many bytes.
PAGE_BYTES = 2 * 1024 * 1024
#: Runs per WatchRuns message at most (the flyte backend sends its snapshots in hundreds).
WATCH_BATCH = 100
_MAX_OFFSET = 2**62


class RunListCalls:
    """ListRuns and WatchRuns, for ``RunService`` (its store and hub)."""

    store: Store
    hub: Hub

    @faults.unary
    async def ListRuns(self, request: rs.ListRunsRequest, context: Context) -> rs.ListRunsResponse:
        where, params = _scope(request)
        query = build_query(request.request, where, params)
        if query.offset > _MAX_OFFSET:
            raise faults.invalid(f"page token {request.request.token!r} is not one this service issued")
        rows = self.store.list_runs(dataclasses.replace(query, limit=query.limit + 1))
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        runs = _fit([r.run() for r in rows], PAGE_BYTES)
        more = more or len(runs) < len(rows)
        token = format(query.offset + len(runs), "x") if more else ""
        return rs.ListRunsResponse(runs=runs, token=token)

    @faults.streaming
    async def WatchRuns(
        self, request: rs.WatchRunsRequest, context: Context
    ) -> AsyncIterator[rs.WatchRunsResponse]:
        """First the runs in the target scope as they are now (as the flyte backend's
        WatchActions does), then each run that changes. The snapshot is at least one message,
        empty when the scope has no runs, so a client knows when the watch is live; every
        message holds at most WATCH_BATCH runs and PAGE_BYTES."""
        target = request.WhichOneof("target")
        seq = 0  # the snapshot: every run changed since the first change
        snapshot = True
        while True:
            event = self.hub.waiter(ALL_RUNS)  # before reading, so no change is missed
            while True:
                # One page of the store at a time: a large store is never held whole.
                changed = self.store.changed_since(seq, WATCH_BATCH)
                if not changed:
                    break
                seq = changed[-1][0]
                runs = [row.run() for _, row in changed if _matches(request, target, row)]
                while runs:
                    page = _fit(runs, PAGE_BYTES)
                    runs = runs[len(page) :]
                    snapshot = False
                    yield rs.WatchRunsResponse(runs=page)
            if snapshot:
                snapshot = False
                yield rs.WatchRunsResponse()
            await self.hub.wait(event, timeout=30)


def _fit(runs: list[rd.Run], budget: int) -> list[rd.Run]:
    """The longest prefix of ``runs`` within ``budget`` bytes (at least one run)."""
    total = 0
    for i, run in enumerate(runs):
        total += run.ByteSize() + 8
        if total > budget and i > 0:
            return runs[:i]
    return runs


def _scope(request: rs.ListRunsRequest) -> tuple[list[str], list[object]]:
    where: list[str] = []
    params: list[object] = []

    def eq(column: str, value: str) -> None:
        if value:
            where.append(f"{column} = ?")
            params.append(value)

    scope = request.WhichOneof("scope_by")
    if scope == "project_id":
        eq("r.project", request.project_id.name)
        eq("r.domain", request.project_id.domain)
    elif scope == "task_name":
        eq("r.project", request.task_name.project)
        eq("r.domain", request.task_name.domain)
        eq("r.task_name", request.task_name.name)
    elif scope == "task_id":
        eq("r.project", request.task_id.project)
        eq("r.domain", request.task_id.domain)
        eq("r.task_name", request.task_id.name)
        eq("r.task_version", request.task_id.version)
    elif scope == "trigger_name":
        where.append("0")  # runs here are never started by triggers
    return where, params


def _matches(request: rs.WatchRunsRequest, target: str | None, row: RunRow) -> bool:
    if target == "project_id":
        p = request.project_id
        return (not p.name or p.name == row.project) and (not p.domain or p.domain == row.domain)
    if target == "task_id":
        t = request.task_id
        task = row.details.metadata.task.id
        return (not t.name or t.name == task.name) and (not t.version or t.version == task.version)
    return True
