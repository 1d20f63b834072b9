"""The queue of child actions waiting for a slot: at most ``limit`` run at once, the others
stay QUEUED in the order they were enqueued. A queued child costs one (run, action) pair here
and its stored row (its spec and details are read back when it starts), so a fan-out of tens of
thousands neither fills memory nor creates a task per child.

An action that enqueues children gives its own slot back: it waits for them, and holding slots
while waiting would deadlock nested fan-outs (every slot a parent waiting for a child that has
no slot).

    queue = ChildQueue(executor, limit=8)
    queue.submit(live)         # from Executor.start_child
    queue.ended(live)          # from the executor when any action ends
"""

from __future__ import annotations

import os
from collections import deque
from typing import TYPE_CHECKING

from ..common import phase as phases
from . import model
from .hub import action_key, tree_key
from .tree_store import phase_of

if TYPE_CHECKING:
    from .executor import Executor, LiveAction


def default_limit() -> int:
    return max(2, os.cpu_count() or 2)


class ChildQueue:
    def __init__(self, executor: Executor, limit: int = 0) -> None:
        self.executor = executor
        self.limit = limit if limit > 0 else default_limit()
        self.running = 0
        self._pending: deque[tuple[str, str]] = deque()

    @property
    def queued(self) -> int:
        """Children waiting (some may have been aborted meanwhile: they are skipped)."""
        return len(self._pending)

    def submit(self, live: LiveAction) -> None:
        run = live.details.id.run.name
        parent = self.executor.live(run, live.details.metadata.parent)
        if parent is not None and parent.holds_child_slot:
            parent.holds_child_slot = False
            self.running -= 1
        if self.running < self.limit and not self._pending:
            self._launch(live)
        else:
            self._pending.append((run, live.details.id.name))
        self._dispatch()

    def ended(self, live: LiveAction) -> None:
        if live.holds_child_slot:
            live.holds_child_slot = False
            self.running -= 1
            self._dispatch()

    def abort_queued(self, run: str, actions: list[str], reason: str) -> None:
        """End children that have not started: ABORTED, never run (in one write). Their queue
        entries are skipped.

        Only an abort of a subtree ends queued children, so their parents are in that abort
        too; they are stopped here, before the children are written ABORTED. A parent sees
        an aborted child as an error and may end of it while the abort is still ending
        thousands of queued children (in chunks): it must end ABORTED, not FAILED."""
        ended = []
        now = model.now_ns()
        for action in actions:
            details = self.executor.store.get_details(run, action)
            if details is not None and not model.is_done(details):
                model.abort(details, reason, now)
                ended.append(details)
        for parent in {d.metadata.parent for d in ended}:
            self._stop_parent(run, parent, reason)
        self.executor.store.save_actions(ended)
        self.executor.hub.notify(tree_key(run), *(action_key(run, d.id.name) for d in ended))

    def _stop_parent(self, run: str, name: str, reason: str) -> None:
        """What ``Executor.abort_tree`` does to a live action, done ahead of it for a parent."""
        live = self.executor.live(run, name)
        if live is None or live.abort_reason is not None:
            return
        live.abort_reason = reason
        if live.process is not None:
            self.executor._stop_soon(live.process)

    def _launch(self, live: LiveAction) -> None:
        self.running += 1
        live.holds_child_slot = True
        self.executor.launch(live)

    def _dispatch(self) -> None:
        from .executor import LiveAction

        store = self.executor.store
        while self.running < self.limit and self._pending:
            run, action = self._pending.popleft()
            if phases.is_terminal(phase_of(store, run, action) or model.ABORTED):
                continue  # aborted while it waited (checked without reading the whole row)
            row = store.get_action(run, action)
            if row is None or model.is_done(row.details):
                continue  # aborted while it waited
            self._launch(
                LiveAction(
                    details=row.details,
                    run_spec=row.run_spec,
                    input_uri=row.input_uri,
                    output_base=row.output_base,
                )
            )
