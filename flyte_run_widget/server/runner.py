"""``asyncio.run`` for the service, with an end that cannot hang.

asyncio.run cancels the tasks left when the service's coroutine returns and waits for every one
of them, with no limit. A connection hypercorn cut while a response was being sent (a task that
had a thousand calls in flight on one HTTP/2 connection, say) can stay "cancelling" forever, and
then SIGTERM never ends the process. By then the service has stopped its tasks and saved every
action, so what is left gets a short while to end and is then dropped.

    run_service(serve_async(...), leftover=2.0)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


def run_service(main: Coroutine[Any, Any, None], leftover: float = 2.0) -> None:
    """Run ``main`` to its end; then cancel what is still running and wait ``leftover`` seconds
    at most for it (and as long again for async generators to close)."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main)
    finally:
        try:
            _end_leftovers(loop, leftover)
        finally:
            loop.close()


def _end_leftovers(loop: asyncio.AbstractEventLoop, leftover: float) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        _, stuck = loop.run_until_complete(asyncio.wait(tasks, timeout=leftover))
        if stuck:
            log.info("%d connection task(s) did not end when cancelled; dropped", len(stuck))
            for task in stuck:
                # Dropping them is the point: no "Task was destroyed but it is pending" error.
                task._log_destroy_pending = False  # type: ignore[attr-defined]
        for task in tasks - stuck:
            if not task.cancelled() and task.exception() is not None:
                log.debug("task %s ended with %r at shutdown", task.get_name(), task.exception())
    loop.run_until_complete(_close_generators(loop, leftover))


async def _close_generators(loop: asyncio.AbstractEventLoop, leftover: float) -> None:
    try:
        await asyncio.wait_for(loop.shutdown_asyncgens(), leftover)
    except TimeoutError:
        log.info("async generators still open at shutdown; dropped")
