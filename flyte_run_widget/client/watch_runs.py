"""Follow every run of a project: WatchRuns, subscribed again after a dropped connection.

async for runs in follow_runs(client):
    for run in runs: ...          # flyteidl2 Run messages, as the service sent them

Each subscription starts with the runs of the project as they are now and goes on with each run
that changes, so after a reconnect the caller sees every run again: it keeps what it already has
and compares (``notebook/run_rows.py`` does).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence

from flyteidl2.common import identifier_pb2
from flyteidl2.workflow import run_definition_pb2, run_service_pb2

from ..errors import ServiceUnavailableError
from .rpc import Client
from .streams import ConnectionCallback, _Backoff, _closed_under_us, _notify, _reconnect, _reconnected

logger = logging.getLogger(__name__)


async def follow_runs(
    client: Client,
    on_connection: ConnectionCallback | None = None,
    patience: int | None = None,
) -> AsyncIterator[Sequence[run_definition_pb2.Run]]:
    """Yield the runs of each WatchRuns message of the client's project, for as long as the
    caller iterates; a dropped stream is subscribed again with backoff (``patience`` failures in
    a row, None: never give up)."""
    cfg = client.config
    what = f"the runs of project {cfg.project!r}"
    req = run_service_pb2.WatchRunsRequest(
        project_id=identifier_pb2.ProjectIdentifier(organization=cfg.org, domain=cfg.domain, name=cfg.project)
    )
    backoff = _Backoff(what, patience)
    reconnecting = False
    while True:
        try:
            async for resp in client.stream("WatchRuns", req, what=what):
                if reconnecting:
                    reconnecting = False
                    _reconnected(on_connection, what)
                backoff.ok()
                if resp.runs:
                    yield resp.runs
            # The service never ends this stream on its own: it went away.
            error: Exception = ServiceUnavailableError("the service closed the stream", code="UNAVAILABLE")
            why = str(error)
        except asyncio.CancelledError:
            if not _closed_under_us():
                raise
            logger.debug("%s: another stream reconnected the channel; subscribing again", what)
            continue
        except ServiceUnavailableError as e:
            why, error = str(e), e
        reconnecting = True
        _notify(on_connection, "reconnecting", why)
        await backoff.fail(error)
        await _reconnect(client, what)
