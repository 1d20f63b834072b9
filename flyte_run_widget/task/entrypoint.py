"""The task process for Python functions: read inputs.pb, call the function, write outputs.pb
or error.pb. The embedded service (or any Flyte-style executor) runs it with templates filled:

    python -m flyte_run_widget.task.entrypoint --inputs {{.Inputs}} --outputs {{.Outputs}} --fn B64

The embedded service passes ``--fn-file PATH`` instead (the pickled function in a file of the
attempt): a command line is visible to every user of the machine, and its length is limited.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import inspect
import os
import sys
import traceback
from pathlib import Path

import cloudpickle
from flyteidl2.core import execution_pb2
from flyteidl2.task import common_pb2

from ..common.idl import ContainerError, ErrorDocument
from ..remote.literals import from_named, to_literal
from . import context
from .context import ERROR_PICKLE


def _write_exception(outputs: Path, exc: BaseException) -> None:
    """The exception itself, for a parent task that called this one to raise as it is."""
    try:
        data = cloudpickle.dumps(exc)
    except Exception:  # not picklable: the parent raises ChildActionError with the message
        return
    (outputs / ERROR_PICKLE).write_bytes(data)


def _write_error(outputs: Path, message: str, code: str, *, user: bool) -> None:
    origin = execution_pb2.ExecutionError.USER if user else execution_pb2.ExecutionError.SYSTEM
    doc = ErrorDocument(
        error=ContainerError(code=code, message=message, kind=ContainerError.NON_RECOVERABLE, origin=origin)
    )
    (outputs / "error.pb").write_bytes(doc.SerializeToString())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flyte_run_widget.task.entrypoint")
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--outputs", required=True)
    function = parser.add_mutually_exclusive_group(required=True)
    function.add_argument("--fn", help="base64 of the cloudpickled function")
    function.add_argument("--fn-file", help="a file holding the cloudpickled function")
    args = parser.parse_args(argv)
    outputs = Path(args.outputs)
    outputs.mkdir(parents=True, exist_ok=True)
    try:
        pickled = Path(args.fn_file).read_bytes() if args.fn_file else base64.b64decode(args.fn)
        fn = cloudpickle.loads(pickled)
        raw = Path(args.inputs).read_bytes() if os.path.exists(args.inputs) else b""
        inputs = from_named(common_pb2.Inputs.FromString(raw).literals)
    except Exception as e:
        traceback.print_exc()
        _write_error(outputs, f"could not load the task: {type(e).__name__}: {e}", "LoadError", user=False)
        return 1
    context.enter_task()  # calls to tasks from here on start child actions
    try:
        result = fn(**inputs)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
    except Exception as e:
        text = traceback.format_exc()
        sys.stderr.write(text)
        _write_error(outputs, text.rstrip(), type(e).__name__, user=True)
        _write_exception(outputs, e)
        return 1
    finally:
        context.close()
    try:
        out = common_pb2.Outputs(literals=[common_pb2.NamedLiteral(name="o0", value=to_literal(result))])
    except Exception as e:
        _write_error(outputs, f"the return value cannot be stored: {e}", "OutputError", user=True)
        return 1
    (outputs / "outputs.pb").write_bytes(out.SerializeToString())
    sys.stdout.flush()
    return 0


async def _await(aw: object) -> object:
    return await aw  # type: ignore[misc]


if __name__ == "__main__":
    sys.exit(main())
