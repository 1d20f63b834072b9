"""Watch and control Flyte 2 runs from a notebook.

import flyte_run_widget as frw
frw.init()                          # a Flyte config file, else the embedded local service
run = frw.run(my_function, x=3)     # or frw.Run.get("r3k9x2m1q")
run                                 # in a notebook cell: a live widget
run.wait(); run.outputs()

In IPython the flyte SDK's own ``flyte.remote.Run`` and ``Action`` show as the widget too
(``display_sdk_runs(False)`` turns that off), and without ``init()`` the widget uses the service
the SDK was initialised with (``flyte.init(...)``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from . import errors
from .client.rpc import init
from .common.phase import friendly_phase, is_terminal
from .common.version import __version__
from .notebook.sdk_display import register_on_import as _register_on_import
from .notebook.sign_in_view import install as _install_sign_in_panel
from .remote.action import Action
from .remote.launch import Task, run
from .remote.launch import task as _task
from .remote.run import ActionDetails, ActionOutputs, Run, RunDetails
from .task.context import group

# Importing the subpackage ``task`` (above) binds its name here: the decorator takes it back.
task = _task

if TYPE_CHECKING:
    from .notebook.runs_table import RunsTable, runs
    from .notebook.widget import RunWidget

__all__ = [
    "Action",
    "ActionDetails",
    "ActionOutputs",
    "Run",
    "RunDetails",
    "RunWidget",
    "RunsTable",
    "Task",
    "__version__",
    "display_sdk_runs",
    "errors",
    "friendly_phase",
    "group",
    "init",
    "is_terminal",
    "run",
    "runs",
    "task",
]

# Silent unless the application configures logging (as httpx and requests do): without a handler
# here, Python's last-resort handler would print our warnings into notebook cells.
logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    # The widget pulls in ipywidgets; only pay for it when it is used.
    if name == "RunWidget":
        from .notebook.widget import RunWidget

        return RunWidget
    if name in ("runs", "RunsTable"):
        from .notebook import runs_table

        return getattr(runs_table, name)
    raise AttributeError(f"module 'flyte_run_widget' has no attribute {name!r}")


def display_sdk_runs(enabled: bool = True) -> bool:
    """Show the flyte SDK's ``flyte.remote.Run`` / ``Action`` objects as the live widget (the
    default in IPython) or, with ``False``, as the SDK's own text. False when not in IPython."""
    from .notebook.sdk_display import display_sdk_runs as switch

    return switch(enabled)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext flyte_run_widget``: the SDK's runs as the widget in this shell."""
    from .notebook.sdk_display import display_sdk_runs as switch

    switch(True, ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .notebook.sdk_display import display_sdk_runs as switch

    switch(False, ipython)


_register_on_import()
# A device login started in a notebook shows its link and code in the cell that needs it.
_install_sign_in_panel()
