"""Follow every run of a project: WatchRuns, subscribed again after a dropped connection.

async for runs in follow_runs(client):
    for run in runs: ...          # flyteidl2 Run messages, as the service sent them

Each subscription starts with the runs of the project as they are now and goes on with each run
that changes, so after a reconnect the caller sees every run again: it keeps what it already has
and compares (``notebook/run_rows.py`` does).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing

from flyteidl2.common import identifier_pb2
from flyteidl2.workflow import run_definition_pb2, run_service_pb2

from .rpc import Client
from .streams import ConnectionCallback, resubscribing


async def follow_runs(
    client: Client,
    on_connection: ConnectionCallback | None = None,
    patience: int | None = None,
) -> AsyncIterator[Sequence[run_definition_pb2.Run]]:
    """Yield the runs of each WatchRuns message of the client's project, for as long as the
    caller iterates; a dropped stream is subscribed again with backoff (``patience`` failures in
    a row, None: never give up)."""
    cfg = client.config
    req = run_service_pb2.WatchRunsRequest(
        project_id=identifier_pb2.ProjectIdentifier(organization=cfg.org, domain=cfg.domain, name=cfg.project)
    )
    stream = resubscribing(
        client,
        "WatchRuns",
        req,
        f"the runs of project {cfg.project!r}",
        on_connection,
        patience,
        complete=lambda: False,  # the service never ends this stream on its own: it went away
        early="the service closed the stream",
    )
    async with aclosing(stream):
        async for resp in stream:
            if resp.runs:
                yield resp.runs
