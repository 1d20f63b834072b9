"""RunService's calls over a run's tree of actions: ListActions (pages, ``parent_name`` and
``phase`` filters) and WatchActions (the whole tree in batches, then only what changes, each
action with ``meets_filter`` and the phase counts of its children). A mixin of ``RunService``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from flyteidl2.common import list_pb2
from flyteidl2.workflow import run_service_pb2 as rs

from ..common import phase as phases
from . import faults
from .hub import tree_key
from .listing import _offset, _phase_value
from .tree_store import all_final, children_phase_counts, feed_rows, feed_rows_of, list_actions
from .tree_wire import enriched_bytes, response_bytes

if TYPE_CHECKING:
    from .hub import Hub
    from .store import RunRow, Store

#: Actions per ListActions page and per WatchActions message at most (as the flyte backend).
BATCH = 100
#: Changed actions read from the store at once while WatchActions catches up (then sent BATCH
#: per message): fewer queries for a snapshot of thousands.
READ_PAGE = 1000
_F = list_pb2.Filter


class ActionFilter:
    """The filters the flyte SDK sends on actions: ``parent_name`` (EQUAL) and ``phase``
    (EQUAL, VALUE_IN, NOT_EQUAL); anything else is refused, naming what is supported."""

    def __init__(self, filters: list[list_pb2.Filter]) -> None:
        self.parent: str | None = None
        self.phases: list[int] = []
        self.not_phases: list[int] = []
        for flt in filters:
            values = list(flt.values)
            if not values:
                raise faults.invalid(f"the filter on {flt.field!r} has no values")
            if flt.field == "parent_name" and flt.function == _F.EQUAL and len(values) == 1:
                self.parent = values[0]
            elif flt.field == "phase" and flt.function in (_F.EQUAL, _F.VALUE_IN):
                self.phases = [_phase_value(v) for v in values]
            elif flt.field == "phase" and flt.function == _F.NOT_EQUAL:
                self.not_phases = [_phase_value(v) for v in values]
            else:
                raise faults.invalid(
                    f"cannot filter actions on {flt.field!r} with {_F.Function.Name(flt.function)}:"
                    " the local Run service filters actions on parent_name (EQUAL) and phase"
                    " (EQUAL, VALUE_IN, NOT_EQUAL)"
                )

    def meets(self, parent: str, phase: int) -> bool:
        """Whether an action with this parent and phase passes the filters."""
        return (
            (self.parent is None or parent == self.parent)
            and (not self.phases or phase in self.phases)
            and phase not in self.not_phases
        )


class ActionTreeCalls:
    store: Store
    hub: Hub

    def find(self, run_id: Any) -> RunRow:
        raise NotImplementedError

    @faults.unary
    async def ListActions(self, request: rs.ListActionsRequest, context: Any) -> rs.ListActionsResponse:
        row = self.find(request.run_id)
        flt = ActionFilter(list(request.request.filters))
        offset = _offset(request.request.token)
        limit = min(request.request.limit or BATCH, BATCH)
        wanted = flt.phases
        actions = list_actions(self.store, row.name, flt.parent, wanted, offset, limit + 1)
        if flt.not_phases:  # rare: filtered here rather than in SQL
            actions = [a for a in actions if a.status.phase not in flt.not_phases]
        more = len(actions) > limit
        token = format(offset + limit, "x") if more else ""
        return rs.ListActionsResponse(actions=actions[:limit], token=token)

    @faults.streaming
    async def WatchActions(self, request: rs.WatchActionsRequest, context: Any) -> AsyncIterator[bytes]:
        """Every action as it is now in messages of at most BATCH, then the actions that change
        (with their parents, whose children's counts changed); ends once every action is final.
        Messages are serialised WatchActionsResponses written from the stored summaries
        (``tree_wire``): no protobuf message is built per action."""
        row = self.find(request.run_id)
        run = row.name
        flt = ActionFilter(list(request.filter))
        seq = 0
        while True:
            event = self.hub.waiter(tree_key(run))  # before reading, so no change is missed
            counts = children_phase_counts(self.store, run)
            while rows := feed_rows(self.store, run, seq, READ_PAGE):
                seq = rows[-1][0]
                latest = {r[1]: r for r in rows}
                parents = {r[2] for r in rows if r[2] and r[2] not in latest}
                for r in feed_rows_of(self.store, run, parents):
                    latest[r[1]] = r
                batch = [
                    enriched_bytes(summary, flt.meets(parent, phase), counts.get(name))
                    for _, name, parent, phase, summary in latest.values()
                ]
                for start in range(0, len(batch), BATCH):
                    yield response_bytes(batch[start : start + BATCH])
            root = self.store.get_run(run)
            final = root is not None and phases.is_terminal(root.details.status.phase)
            if final and all_final(self.store, run):
                return
            await self.hub.wait(event, timeout=30)
