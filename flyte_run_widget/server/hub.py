"""In-memory change notification: watchers sleep until something they follow changes.

    event = hub.waiter(("run", "r1"))   # take the event *before* reading state
    ...read and send state...
    await hub.wait(event, timeout=30)

Taking the event first means a change between reading and waiting is never missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

#: Key notified whenever any run changes (WatchRuns follows it).
ALL_RUNS = ("runs",)


def run_key(run_name: str) -> tuple[str, str]:
    return ("run", run_name)


def action_key(run_name: str, action: str) -> tuple[str, str, str]:
    """Notified when the action changes (the root's changes also notify ``run_key``)."""
    return ("action", run_name, action)


def tree_key(run_name: str) -> tuple[str, str]:
    """Notified when any action of the run changes (WatchActions, StateService.Watch)."""
    return ("tree", run_name)


def log_key(run_name: str, action: str, attempt: int) -> tuple[str, str, str, int]:
    return ("log", run_name, action, attempt)


class Hub:
    """One asyncio.Event per key, replaced after every notification."""

    def __init__(self) -> None:
        self._events: dict[Hashable, asyncio.Event] = {}

    def waiter(self, key: Hashable) -> asyncio.Event:
        event = self._events.get(key)
        if event is None:
            event = self._events[key] = asyncio.Event()
        return event

    def notify(self, *keys: Hashable) -> None:
        for key in keys:
            # Popping means an idle key costs no memory once its watchers have been woken.
            event = self._events.pop(key, None)
            if event is not None:
                event.set()

    @staticmethod
    async def wait(event: asyncio.Event, timeout: float | None = None) -> bool:
        """True when notified, False on timeout."""
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True
