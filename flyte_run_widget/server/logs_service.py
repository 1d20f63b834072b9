"""The RunLogsService servicer: TailLogs sends an attempt's stored lines in large batches,
then follows the log while the attempt runs, and ends once the attempt is final and every
line has been sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import grpc
from flyteidl2.workflow import run_logs_service_pb2 as rl
from flyteidl2.workflow import run_logs_service_pb2_grpc as rl_grpc

from .. import phase as phases
from . import faults
from .hub import Hub, log_key
from .logfile import LogReader, Record
from .model import timestamp
from .paths import Layout
from .service import RunService

# Keeps each response well under gRPC's default 4 MiB client limit (a line is at most 256 KiB).
_BATCH_LINES = 20_000
_BATCH_BYTES = 2 * 1024 * 1024


def batches(records: list[Record]) -> Iterator[rl.TailLogsResponse]:
    """TailLogs responses for ``records``, many lines each, each well under 4 MiB."""
    i, n = 0, len(records)
    while i < n:
        response = rl.TailLogsResponse()
        add = response.logs.add().lines.add
        size = 0
        last_ns = -1
        ts = timestamp(0)
        stop = min(n, i + _BATCH_LINES)
        while i < stop and size < _BATCH_BYTES:
            ts_ns, origin, data = records[i]
            if ts_ns != last_ns:
                ts, last_ns = timestamp(ts_ns), ts_ns
            add(message=data.decode("utf-8", errors="replace") + "\n", originator=origin, timestamp=ts)
            size += len(data)
            i += 1
        yield response


class RunLogsService(rl_grpc.RunLogsServiceServicer):
    def __init__(self, runs: RunService, layout: Layout, hub: Hub) -> None:
        self.runs = runs
        self.layout = layout
        self.hub = hub

    @faults.streaming
    async def TailLogs(
        self, request: rl.TailLogsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[rl.TailLogsResponse]:
        row = self.runs.find_action(request.action_id)
        run, action = row.name, row.details.id.name
        count = len(row.details.attempts)
        number = request.attempt or count
        if number > count:
            raise faults.not_found(f"run {run!r} has no attempt {number} (yet): it has {count} attempt(s)")
        reader = LogReader(self.layout.log_file(run, action, number))
        key = log_key(run, action, number)
        while True:
            event = self.hub.waiter(key)
            # Lines are written before the attempt is marked final, so a final attempt read
            # to the end has nothing more to come.
            details = self.runs.find_action(request.action_id).details
            final = phases.is_terminal(details.attempts[number - 1].phase)
            records = reader.read()
            if records:
                for response in batches(records):
                    yield response
                continue
            if final:
                return
            await self.hub.wait(event, timeout=5)
