"""Streams that survive a dropped connection: re-subscribe with backoff, resume where we were.

async for details in follow_action(client, action_id):
    print(details.status.phase)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import aclosing
from typing import Any

from flyteidl2.common import identifier_pb2
from flyteidl2.logs.dataplane import payload_pb2
from flyteidl2.workflow import run_definition_pb2, run_logs_service_pb2, run_service_pb2

from ..common.phase import is_terminal
from ..errors import LogsNotAvailableError, NotFoundError, ServiceError, ServiceUnavailableError
from .rpc import Client

logger = logging.getLogger(__name__)

#: Called with ("reconnecting", why) when a stream dropped and ("connected", "") once it is back.
ConnectionCallback = Callable[[str, str], None]

BACKOFF_START = 0.5
BACKOFF_MAX = 10.0
MAX_FAILURES = 5


class _Backoff:
    def __init__(self, what: str, patience: int | None) -> None:
        self.what = what
        self.patience = patience  # failures in a row before giving up; None: never
        self.failures = 0
        self.delay = BACKOFF_START

    def ok(self) -> None:
        self.failures = 0
        self.delay = BACKOFF_START

    async def fail(self, error: Exception) -> None:
        self.failures += 1
        if self.patience is not None and self.failures >= self.patience:
            logger.error(
                "%s: giving up after %d failed attempts to reconnect: %s", self.what, self.failures, error
            )
            raise error
        logger.warning(
            "%s: stream dropped (%s); reconnecting in %.3g s (failure %d)",
            self.what,
            error,
            self.delay,
            self.failures,
        )
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, BACKOFF_MAX)


def _closed_under_us() -> bool:
    """A stream raised CancelledError but our task was not cancelled: another stream on the same
    client closed the shared channel to reconnect (grpc.aio cancels the calls of a closed channel
    locally). The stream only has to subscribe again, without closing the channel in turn."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() == 0


def _notify(cb: ConnectionCallback | None, state: str, why: str = "") -> None:
    if cb is not None:
        cb(state, why)


def _reconnected(cb: ConnectionCallback | None, what: str) -> None:
    logger.info("%s: reconnected", what)
    _notify(cb, "connected")


async def _reconnect(client: Client, what: str) -> None:
    """Make a new connection before subscribing again. If that fails, the next subscription
    fails too and counts against the backoff, so the error is only logged here."""
    try:
        await client.reconnect()
    except ServiceUnavailableError as e:
        logger.debug("%s: reconnect failed: %s", what, e)


def _action_label(action_id: identifier_pb2.ActionIdentifier) -> str:
    return f"run {action_id.run.name!r}"


async def resubscribing(
    client: Client,
    method: str,
    request: Any,
    what: str,
    on_connection: ConnectionCallback | None,
    patience: int | None,
    complete: Callable[[], bool],
    early: str,
) -> AsyncGenerator[Any, None]:
    """The responses of the server stream ``method``, subscribed again with backoff whenever it
    drops, or ends while ``complete()`` is False (``early`` says why, as the error). After
    ``patience`` failures in a row (None: never) the last error is raised; any other service
    error is raised at once. Each new subscription repeats what the service sends first (a
    snapshot): the caller merges or skips."""
    backoff = _Backoff(what, patience)
    reconnecting = False
    while True:
        try:
            async for resp in client.stream(method, request, what=what):
                if reconnecting:
                    reconnecting = False
                    _reconnected(on_connection, what)
                backoff.ok()
                yield resp
            if complete():
                return
            error: Exception = ServiceUnavailableError(early, code="UNAVAILABLE")
        except asyncio.CancelledError:
            if not _closed_under_us():
                raise
            logger.debug("%s: another stream reconnected the channel; subscribing again", what)
            continue
        except ServiceUnavailableError as e:
            error = e
        reconnecting = True
        _notify(on_connection, "reconnecting", str(error))
        await backoff.fail(error)
        await _reconnect(client, what)


async def follow_action(
    client: Client,
    action_id: identifier_pb2.ActionIdentifier,
    on_connection: ConnectionCallback | None = None,
    patience: int | None = MAX_FAILURES,
) -> AsyncIterator[run_definition_pb2.ActionDetails]:
    """Yield action details from WatchActionDetails until a terminal phase, re-subscribing when
    the stream drops or ends early; after ``patience`` failures in a row (None: never) the
    last error is raised."""
    req = run_service_pb2.WatchActionDetailsRequest(action_id=action_id)
    stream = resubscribing(
        client,
        "WatchActionDetails",
        req,
        _action_label(action_id),
        on_connection,
        patience,
        complete=lambda: False,  # it ends with the terminal phase, below
        early="the service closed the stream before the run finished",
    )
    async with aclosing(stream):
        async for resp in stream:
            yield resp.details
            if is_terminal(resp.details.status.phase):
                return


LogBatch = Sequence[payload_pb2.LogLine]


async def follow_logs(
    client: Client,
    action_id: identifier_pb2.ActionIdentifier,
    attempt: int,
    *,
    start: int = 0,
    wait_for_logs: bool = True,
    on_connection: ConnectionCallback | None = None,
    patience: int | None = MAX_FAILURES,
) -> AsyncIterator[LogBatch]:
    """Yield batches of log lines of one attempt (1-based), from line ``start`` on, until the
    service ends the stream. A dropped stream is resumed by line position: no line twice."""
    wanted = start  # index of the next line to yield; survives reconnects
    req = run_logs_service_pb2.TailLogsRequest(action_id=action_id, attempt=attempt)
    what = f"logs of {_action_label(action_id)} attempt {attempt}"
    backoff = _Backoff(what, patience)
    reconnecting = False
    not_found_delay = 0.1
    while True:
        try:
            position = 0  # every subscription streams the attempt's log from its first line
            async for resp in client.stream("TailLogs", req, what=what):
                if reconnecting:
                    reconnecting = False
                    _reconnected(on_connection, what)
                backoff.ok()
                for group in resp.logs:
                    lines = group.lines
                    n = len(lines)
                    skip = wanted - position
                    position += n
                    if skip >= n:
                        continue
                    wanted = position
                    yield lines[skip:] if skip > 0 else lines
            return
        except NotFoundError as e:
            if not wait_for_logs or await _is_finished(client, action_id):
                raise LogsNotAvailableError(
                    f"{what} are not available: {e.details or 'the attempt has no logs'}",
                    code=e.code,
                    details=e.details,
                ) from None
            logger.debug("%s: not there yet, asking again in %.3g s", what, not_found_delay)
            await asyncio.sleep(not_found_delay)
            not_found_delay = min(not_found_delay * 2, 2.0)
        except asyncio.CancelledError:
            if not _closed_under_us():
                raise
            logger.debug("%s: another stream reconnected the channel; subscribing again", what)
        except ServiceUnavailableError as e:
            reconnecting = True
            _notify(on_connection, "reconnecting", str(e))
            await backoff.fail(e)
            await _reconnect(client, what)


async def _is_finished(client: Client, action_id: identifier_pb2.ActionIdentifier) -> bool:
    resp = await client.unary(
        "GetActionDetails",
        run_service_pb2.GetActionDetailsRequest(action_id=action_id),
        what=_action_label(action_id),
    )
    return is_terminal(resp.details.status.phase)


#: How often the actions of a run are listed where the service has no WatchActions (the flyte
#: SDK's terminal UI lists them this often too).
POLL_INTERVAL = 2.0


async def follow_actions(
    client: Client,
    run_id: identifier_pb2.RunIdentifier,
    on_connection: ConnectionCallback | None = None,
    patience: int | None = MAX_FAILURES,
    poll_interval: float = POLL_INTERVAL,
) -> AsyncIterator[list[run_definition_pb2.EnrichedAction]]:
    """Yield the actions of a run as WatchActions sends them: first every action (in batches),
    then only the ones that changed, until the root action is final. A dropped stream is
    subscribed again (its snapshot repeats what is known: the caller merges). A service without
    WatchActions (UNIMPLEMENTED) is listed with ListActions every ``poll_interval`` seconds."""
    what = f"actions of run {run_id.name!r}"
    root_done = False
    stream = resubscribing(
        client,
        "WatchActions",
        run_service_pb2.WatchActionsRequest(run_id=run_id),
        what,
        on_connection,
        patience,
        complete=lambda: root_done,
        early="the service closed the stream before the run finished",
    )
    try:
        async with aclosing(stream):
            async for resp in stream:
                batch = list(resp.enriched_actions)
                root_done = root_done or any(
                    not e.action.metadata.parent and is_terminal(e.action.status.phase) for e in batch
                )
                yield batch
    except ServiceError as e:
        if e.code != "UNIMPLEMENTED":
            raise
        logger.info("%s: the service has no WatchActions; listing every %g s", what, poll_interval)
        async for batch in _poll_actions(client, run_id, what, poll_interval):
            yield batch


async def _poll_actions(
    client: Client, run_id: identifier_pb2.RunIdentifier, what: str, interval: float
) -> AsyncIterator[list[run_definition_pb2.EnrichedAction]]:
    """ListActions every ``interval`` s, yielding the actions that changed since the last list,
    until the root action and every other one are final."""
    from flyteidl2.common import list_pb2

    seen: dict[str, bytes] = {}
    while True:
        changed: list[run_definition_pb2.EnrichedAction] = []
        finished = True
        token = ""
        while True:
            resp = await client.unary(
                "ListActions",
                run_service_pb2.ListActionsRequest(
                    run_id=run_id, request=list_pb2.ListRequest(limit=100, token=token)
                ),
                what=what,
            )
            for action in resp.actions:
                data = action.SerializeToString(deterministic=True)
                finished = finished and is_terminal(action.status.phase)
                if seen.get(action.id.name) != data:
                    seen[action.id.name] = data
                    changed.append(run_definition_pb2.EnrichedAction(action=action, meets_filter=True))
            token = resp.token
            if not token or not resp.actions:
                break
        if changed or not seen:
            yield changed
        if finished and seen:
            return
        await asyncio.sleep(interval)
