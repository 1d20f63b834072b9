"""What differs across the flyteidl2 releases we install beside.

The flyte SDK pins one flyteidl2 release exactly (flyte 2.12.1: 2.0.51; flyte 2.0.12: 2.0.8), so
this package runs on whichever one the SDK brought. What we use that 2.0.8 lacks is written and
read only where the installed messages have it:

- ``Run.labels`` (the run spec's labels, copied onto the Run)
- ``ErrorInfo.code`` (a short error code beside the message)
- ``Filter.Function.VALUE_NOT_IN`` (a ListRuns filter)
- ``ErrorDocument`` and ``ContainerError`` live in ``core/errors_pb2`` up to 2.0.8 and in
  ``core/execution_pb2`` later (same message names, same wire format)

Only the error document is imported at the top: the task process (``task.entrypoint``) loads this module
and should not pay for the run messages.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flyteidl2.workflow import run_definition_pb2

try:
    from flyteidl2.core.execution_pb2 import ContainerError, ErrorDocument
except ImportError:  # flyteidl2 2.0.8 and before (the flyte 2.0.x line)
    from flyteidl2.core.errors_pb2 import ContainerError, ErrorDocument  # type: ignore[no-redef]

__all__ = ["ContainerError", "ErrorDocument", "error_code", "new_error", "new_run", "value_not_in"]


@functools.cache
def _has_field(message: str, field: str) -> bool:
    from flyteidl2.workflow import run_definition_pb2

    return field in getattr(run_definition_pb2, message).DESCRIPTOR.fields_by_name


def value_not_in() -> int | None:
    """The VALUE_NOT_IN filter function, or None where the installed flyteidl2 has none."""
    from flyteidl2.common import list_pb2

    values = list_pb2.Filter.Function.DESCRIPTOR.values_by_name
    return values["VALUE_NOT_IN"].number if "VALUE_NOT_IN" in values else None


def new_run(action: run_definition_pb2.Action, labels: Mapping[str, str]) -> run_definition_pb2.Run:
    from flyteidl2.workflow import run_definition_pb2

    run = run_definition_pb2.Run(action=action)
    if labels and _has_field("Run", "labels"):
        run.labels.update(labels)
    return run


def new_error(kind: int, code: str, message: str) -> run_definition_pb2.ErrorInfo:
    from flyteidl2.workflow import run_definition_pb2

    err = run_definition_pb2.ErrorInfo(kind=kind, message=message)  # type: ignore[arg-type]
    if _has_field("ErrorInfo", "code"):
        err.code = code
    return err


def error_code(err: run_definition_pb2.ErrorInfo) -> str:
    return str(err.code) if _has_field("ErrorInfo", "code") else ""
