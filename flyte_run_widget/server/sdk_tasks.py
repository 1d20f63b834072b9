"""Tasks written with the flyte SDK: recognising them, refusing what a laptop cannot give them,
and the command and environment their runtime (``a0``) needs.

    problem = unsupported(task_spec)          # None, or a message naming the feature
    if is_flyte_runtime(container): argv = runtime_argv(python, container.args)

The runtime's contract (flyte 2.12.1, ``flyte/_bin/runtime.py``): an empty command and args
starting with ``a0``, run by a Python that has flyte. The environment it needs (``_U_RUN_BASE``,
``_U_ORG_NAME``, ``_U_EP_OVERRIDE``, ``FSSPEC_FILE_AUTO_MKDIR``, ...) every task gets
(``task_env.py``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from flyteidl2.core import tasks_pb2
from flyteidl2.task import task_definition_pb2

from ..errors import ServeError

#: The environment variable naming the Python that runs flyte tasks (``--flyte-python``).
FLYTE_PYTHON_ENV = "FLYTE_RUN_WIDGET_FLYTE_PYTHON"
RUNTIME_ENTRY = "a0"
_FIX = (
    f"start the service with --flyte-python PATH (or set {FLYTE_PYTHON_ENV}) naming a Python"
    " that has the flyte SDK installed"
)


def is_flyte_runtime(container: tasks_pb2.Container) -> bool:
    return not container.command and bool(container.args) and container.args[0] == RUNTIME_ENTRY


def _asks_for_gpu(resources: tasks_pb2.Resources) -> bool:
    return any(e.name == tasks_pb2.Resources.GPU for e in (*resources.requests, *resources.limits))


def unsupported(task: task_definition_pb2.TaskSpec) -> str | None:
    """Why this service cannot run ``task``, naming the feature; None when it can."""
    template = task.task_template
    where = f"task {template.id.name!r}" if template.id.name else "the task"
    if template.type == "actor":
        return (
            f"{where} runs in a reusable environment (TaskEnvironment(reusable=...)), which the local"
            " Run service does not support: every task runs as a new local process; drop reusable="
        )
    if template.HasField("k8s_pod"):
        return f"{where} has a pod template, which the local Run service does not support: drop pod_template="
    if not template.HasField("container"):
        return (
            f"{where} is of type {template.type!r} without a container: the local Run service runs"
            " container tasks as local processes and cannot run plugin task types"
        )
    if _asks_for_gpu(template.container.resources) or template.extended_resources.HasField("gpu_accelerator"):
        return (
            f"{where} requests a GPU or accelerator (Resources(gpu=...)), which the local Run service"
            " does not support: it runs tasks as local processes; drop the gpu request to run it here"
        )
    if template.security_context.secrets:
        keys = ", ".join(sorted({s.key for s in template.security_context.secrets}))
        return (
            f"{where} requests secrets ({keys}), which the local Run service does not support: pass"
            " what it needs in the TaskEnvironment's env_vars, or read it from a file"
        )
    return None


@dataclass(frozen=True)
class FlytePython:
    """The interpreter that runs flyte tasks, and whether it was named or chosen by default."""

    path: str
    named: bool

    @staticmethod
    def choose(option: str | None) -> FlytePython:
        """``--flyte-python``, else the environment variable, else this service's own
        interpreter (checked when the first flyte task arrives)."""
        named = option or os.environ.get(FLYTE_PYTHON_ENV)
        if named:
            path = Path(named).expanduser()
            if not path.is_absolute():
                path = Path.cwd() / path
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise ServeError(f"--flyte-python {named!r} is not an executable file: {_FIX}")
            # Not resolved: a virtualenv's bin/python is a link whose target lacks the venv.
            return FlytePython(str(path), True)
        return FlytePython(sys.executable, False)

    def bin_dir(self) -> str:
        return str(Path(self.path).parent)


class FlyteCheck:
    """Whether the flyte Python can import flyte, asked once (a start of that Python costs ~1 s)."""

    def __init__(self, python: FlytePython) -> None:
        self.python = python
        self._answer: str | bool | None = False  # False: not asked yet; None: fine; str: why not

    async def problem(self) -> str | None:
        if self._answer is False:
            self._answer = await self._ask()
        return self._answer  # type: ignore[return-value]

    async def _ask(self) -> str | None:
        if not self.python.named:
            if importlib.util.find_spec("flyte") is not None:
                return None
            return (
                f"this task runs the flyte SDK's runtime, and the service's own Python"
                f" ({self.python.path}) has no flyte installed: {_FIX}"
            )
        proc = await asyncio.create_subprocess_exec(
            self.python.path,
            "-c",
            "import flyte._bin.runtime",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        if proc.returncode == 0:
            return None
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        return (
            f"the Python that runs flyte tasks ({self.python.path}) cannot import flyte ({last[0]}): {_FIX}"
        )


@dataclass
class SdkSettings:
    """The Python that runs tasks written with the flyte SDK, and whether it has flyte."""

    python: FlytePython

    def __post_init__(self) -> None:
        self.check = FlyteCheck(self.python)


def runtime_argv(python: FlytePython, args: list[str]) -> list[str]:
    """``a0 ...`` as the flyte Python runs it (the ``a0`` script's own module)."""
    return [python.path, "-m", "flyte._bin.runtime", *args]


def runtime_env(python: FlytePython, attempt: int, path: str) -> dict[str, str]:
    """What the flyte runtime needs beyond every task's environment (``task_env``)."""
    return {
        "FLYTE_ATTEMPT_NUMBER": str(attempt - 1),  # counted from 0 by the SDK
        # Sub-processes a task starts find the same environment's programs first.
        "PATH": os.pathsep.join(p for p in (python.bin_dir(), path) if p),
    }
