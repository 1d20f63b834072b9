"""What an attempt's process left behind: ``outputs.pb``, ``error.pb`` or only an exit code.

outcome = read_outcome(outputs_dir, exit_code=1, stderr_tail=[b"boom"])
"""

from __future__ import annotations

import signal
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from flyteidl2.core import execution_pb2
from flyteidl2.task import common_pb2
from google.protobuf.message import DecodeError, Message

from ..common.idl import ErrorDocument
from .model import FAILED, SYSTEM, USER


@dataclass
class Outcome:
    """Success carries outputs; failure carries an error for ErrorInfo."""

    outputs: common_pb2.Outputs | None = None
    kind: int = USER
    code: str = ""
    message: str = ""
    retryable: bool = False
    phase: int = FAILED

    @property
    def ok(self) -> bool:
        return self.outputs is not None


def failure(kind: int, code: str, message: str, retryable: bool = False) -> Outcome:
    return Outcome(kind=kind, code=code, message=message, retryable=retryable)


def _parse(path: Path, message: Message) -> str | None:
    """Fill ``message`` from ``path``; an error text when the bytes are not that message."""
    data = path.read_bytes()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        return str(exc) or "not a protobuf message"
    # Protobuf parses many byte strings as nothing but unknown fields: that is garbage too.
    if data and not message.ListFields():
        return "it holds no known field"
    return None


def _exit_text(exit_code: int) -> tuple[str, str]:
    if exit_code < 0:
        try:
            name = signal.Signals(-exit_code).name
        except ValueError:
            name = f"signal {-exit_code}"
        return f"Signal{name}", f"the task process was killed by {name}"
    return f"ExitCode{exit_code}", f"the task process exited with code {exit_code}"


def read_outcome(outputs_dir: Path, exit_code: int, stderr_tail: Iterable[bytes]) -> Outcome:
    error_file = outputs_dir / "error.pb"
    if error_file.exists():
        doc = ErrorDocument()
        problem = _parse(error_file, doc)
        if problem:
            return failure(SYSTEM, "ErrorDocumentUnreadable", f"error.pb could not be parsed: {problem}")
        err = doc.error
        kind = SYSTEM if err.origin == execution_pb2.ExecutionError.SYSTEM else USER
        return failure(kind, err.code or "TaskError", err.message, retryable=kind == USER)
    if exit_code != 0:
        code, text = _exit_text(exit_code)
        tail = b"\n".join(stderr_tail).decode("utf-8", errors="replace").rstrip()
        if tail:
            text += ". Last lines of stderr:\n" + tail
        return failure(USER, code, text, retryable=True)
    outputs = common_pb2.Outputs()
    outputs_file = outputs_dir / "outputs.pb"
    if outputs_file.exists():
        problem = _parse(outputs_file, outputs)
        if problem:
            return failure(
                SYSTEM,
                "OutputsUnreadable",
                f"outputs.pb could not be parsed as flyteidl2.task.Outputs: {problem}",
            )
    return Outcome(outputs=outputs)
