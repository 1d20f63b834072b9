"""The RunLogsService servicer: TailLogs sends an attempt's stored lines in large batches,
then follows the log while the attempt runs, and ends once the attempt is final and every
line has been sent. It answers serialised ``TailLogsResponse`` bytes (no protobuf message built
per response), so it is registered with ``service.add_to_server``, whose serializer passes them on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from flyteidl2.workflow import run_logs_service_pb2 as rl
from flyteidl2.workflow import run_logs_service_pb2_grpc as rl_grpc

from ..common import phase as phases
from . import faults
from .hub import Hub, log_key
from .log_files import LogReader, varint
from .paths import Layout
from .service import RunService

#: Lines per response body: well under gRPC's default 4 MiB client limit even with one more
#: line of 256 KiB (``MAX_LINE_BYTES``) on top.
_BATCH_BYTES = 2 * 1024 * 1024


def response_bytes(body: bytes) -> bytes:
    """A serialised ``TailLogsResponse`` with one ``logs`` entry whose body is ``body``
    (concatenated ``lines`` elements, as ``LogReader.read_encoded`` returns them)."""
    return b"\x0a" + varint(len(body)) + body


class RunLogsService(rl_grpc.RunLogsServiceServicer):
    def __init__(self, runs: RunService, layout: Layout, hub: Hub) -> None:
        self.runs = runs
        self.layout = layout
        self.hub = hub

    @faults.streaming
    async def TailLogs(
        self, request: rl.TailLogsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
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
            bodies = reader.read_encoded(part_bytes=_BATCH_BYTES)
            if bodies:
                for body in bodies:
                    yield response_bytes(body)
                continue
            if final:
                return
            await self.hub.wait(event, timeout=5)
