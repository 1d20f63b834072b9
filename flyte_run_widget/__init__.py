"""Watch and control Flyte 2 runs from a notebook.

import flyte_run_widget as frw
frw.init()                          # a Flyte config file, else the embedded local service
run = frw.run(my_function, x=3)     # or frw.Run.get("r3k9x2m1q")
run                                 # in a notebook cell: a live widget
run.wait(); run.outputs()
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from . import errors
from .client.rpc import init
from .common.phase import friendly_phase, is_terminal
from .remote.launch import Task, run, task
from .remote.run import ActionDetails, ActionOutputs, Run, RunDetails

if TYPE_CHECKING:
    from .notebook.widget import RunWidget

__all__ = [
    "ActionDetails",
    "ActionOutputs",
    "Run",
    "RunDetails",
    "RunWidget",
    "Task",
    "errors",
    "friendly_phase",
    "init",
    "is_terminal",
    "run",
    "task",
]
__version__ = "0.1.0"

# Silent unless the application configures logging (as httpx and requests do): without a handler
# here, Python's last-resort handler would print our warnings into notebook cells.
logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    # The widget pulls in ipywidgets; only pay for it when it is used.
    if name == "RunWidget":
        from .notebook.widget import RunWidget

        return RunWidget
    raise AttributeError(f"module 'flyte_run_widget' has no attribute {name!r}")
