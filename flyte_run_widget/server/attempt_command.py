"""The command an attempt runs, and the line that opens its log.

    values = template_values(details, inputs, dirs, previous)
    argv = command_line(container, values, sdk_python)    # templates filled
    argv = move_function(argv, attempt_dir)               # the pickled function in a file
    started_text(details)                                 # "started tasks.train, attempt 1"

A Python task's spec carries its cloudpickled function as ``--fn BASE64`` (a Flyte cluster runs
the spec as it is). Here the function goes to a file of the attempt instead: a command line is
visible to every user of the machine (``ps``) and its length is limited.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from flyteidl2.core import tasks_pb2
from flyteidl2.workflow import run_definition_pb2 as rd

from . import model
from .sdk_tasks import FlytePython, is_flyte_runtime, runtime_argv
from .templates import render

#: The module that runs Python tasks (``flyte_run_widget.task.entrypoint``), named as a string:
#: the service does not import the task side.
ENTRYPOINT = "flyte_run_widget.task.entrypoint"
#: The pickled function's file, in the attempt's folder.
FUNCTION_FILE = "function.pkl"


def template_values(
    details: rd.ActionDetails, inputs: Path, dirs: dict[str, Path], previous: Path | None
) -> dict[str, str]:
    """What the ``{{.Name}}`` templates of the container's command and args become."""
    return {
        "Inputs": str(inputs),
        "Input": str(inputs),
        "InputPrefix": str(inputs.parent),
        "Outputs": str(dirs["outputs"]),
        "OutputPrefix": str(dirs["outputs"]),
        "rawOutputDataPrefix": str(dirs["raw"]),
        "checkpointOutputPrefix": str(dirs["checkpoint"]),
        "prevCheckpointPrefix": str(previous) if previous is not None else "",
        "runName": details.id.run.name,
        "actionName": details.id.name,
        "runStartTime": str(details.status.start_time.ToJsonString()),
    }


def command_line(
    container: tasks_pb2.Container, values: dict[str, str], sdk_python: FlytePython | None
) -> list[str]:
    if is_flyte_runtime(container) and sdk_python is not None:
        # The flyte SDK's runtime (``a0 ...``), run by the Python that has flyte.
        return runtime_argv(sdk_python, render(container.args, values))
    return render([*container.command, *container.args], values)


def move_function(argv: list[str], folder: Path) -> list[str]:
    """``argv`` with the entrypoint's ``--fn BASE64`` replaced by ``--fn-file PATH``, the
    pickled function written there (mode 0600: it may hold what the function captured). Other
    commands are returned as they are. Raises ValueError when the argument is not base64."""
    start = _entrypoint_at(argv)
    if start is None:
        return argv
    for i in range(start, len(argv) - 1):
        if argv[i] == "--fn":
            try:
                data = base64.b64decode(argv[i + 1], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(
                    f"the task's --fn argument is not base64 of a pickled function ({exc}):"
                    " make the task spec again with flyte_run_widget"
                ) from exc
            path = folder / FUNCTION_FILE
            write_private(path, data)
            return [*argv[:i], "--fn-file", str(path), *argv[i + 2 :]]
    return argv


def _entrypoint_at(argv: list[str]) -> int | None:
    """Where the entrypoint's own arguments begin, if ``argv`` runs it."""
    for i in range(len(argv) - 1):
        if argv[i] == "-m" and argv[i + 1] == ENTRYPOINT:
            return i + 2
    return None


def write_private(path: Path, data: bytes) -> None:
    """``data`` in ``path``, readable by this user only (so is a file it replaces)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # an existing file keeps its mode through O_CREAT
        f.write(data)


def started_text(details: rd.ActionDetails) -> str:
    """The log's first line, but the pid (the relay adds it once the task has one)."""
    spec = details.task
    name = spec.task_template.id.name or spec.short_name or f"action {details.id.name}"
    # One line whatever the name holds: it is the user's text.
    shown = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in name)
    return f"started {shown}, attempt {model.current(details).attempt}"
