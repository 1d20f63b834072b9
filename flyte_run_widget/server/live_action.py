"""An action this service runs now: its details, the attempt's process, why it is being
aborted, and where a child's inputs and outputs are.

    live = LiveAction(details=details, run_spec=run_spec)
    executor.launch(live)               # executor.live(run, action) finds it again by live_key
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from flyteidl2.task import run_pb2
from flyteidl2.workflow import run_definition_pb2 as rd

from .process import TaskProcess
from .store import ROOT_ACTION


@dataclass
class LiveAction:
    details: rd.ActionDetails
    run_spec: run_pb2.RunSpec
    abort_reason: str | None = None
    process: TaskProcess | None = None
    note: str | None = None  # a SYSTEM line to add once the adopted attempt's relay ended
    done: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    # A child action's: the inputs file its parent wrote, and where its attempts' outputs go
    # ({output_base}/{action}/{attempt}, as the flyte SDK's controller reads them).
    input_uri: str = ""
    output_base: str = ""
    holds_child_slot: bool = False

    @property
    def key(self) -> str | tuple[str, str]:
        return live_key(self.details.id.run.name, self.details.id.name)


def live_key(run: str, action: str) -> str | tuple[str, str]:
    """A root action is known by its run's name, a child by (run, action)."""
    return run if action == ROOT_ACTION else (run, action)
