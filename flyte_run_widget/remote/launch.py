"""Start runs: ``run(task, **inputs)`` with a Python function (one defined in a notebook cell
works) or a ``TaskSpec``.

    @task(retries=1, timeout=timedelta(minutes=5))
    def train(epochs: int) -> float: ...

    r = run(train, epochs=3)          # or: await run.aio(train, epochs=3)
"""

from __future__ import annotations

import base64
import datetime as dt
import inspect
import sys
import sysconfig
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
from flyteidl2.common import identifier_pb2
from flyteidl2.core import identifier_pb2 as core_id
from flyteidl2.core import interface_pb2, literals_pb2, tasks_pb2
from flyteidl2.task import run_pb2, task_definition_pb2
from flyteidl2.workflow import run_service_pb2

from ..client.loop import syncify
from ..client.rpc import get_client
from ..errors import (
    AlreadyFinishedError,
    ArgumentTypeError,
    ArgumentValueError,
    ConversionError,
    InvalidArgumentError,
)
from .literals import literal_type, to_inputs
from .run import Run

# Linux caps one argument at 128 KiB; the pickled function travels as one.
_MAX_PICKLE = 96 * 1024
TASK_TYPE = "python-task"


@dataclass
class Task:
    """A Python function plus how to run it."""

    fn: Callable[..., Any]
    name: str = ""
    timeout: dt.timedelta | None = None
    retries: int = 0
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ArgumentTypeError(f"task() needs a function, not {type(self.fn).__name__}")
        if not self.name:
            self.name = f"{self.fn.__module__}.{self.fn.__qualname__}".replace("<", "").replace(">", "")
        if self.retries < 0:
            raise ArgumentValueError(f"retries must be 0 or more, not {self.retries}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """A plain call, except inside a task the service runs: there it starts a child action
        and returns its result (an async function's call returns an awaitable; the child's
        exception is raised here)."""
        from ..task import context

        if not context.in_task():
            return self.fn(*args, **kwargs)
        try:
            bound = inspect.signature(self.fn).bind(*args, **kwargs)
        except TypeError as e:
            raise ArgumentTypeError(f"inputs do not fit {self.name}(): {e}") from e
        bound.apply_defaults()
        inputs = to_inputs(dict(bound.arguments))
        spec, group = self._spec(), context.current_group()  # the group as the call is made
        controller = context.controller()
        if inspect.iscoroutinefunction(self.fn):
            return controller.call_async(spec, inputs, group)
        return controller.call(spec, inputs, group)

    def _spec(self) -> task_definition_pb2.TaskSpec:
        # Pickled once per process: a fan-out calls the same task thousands of times.
        cached: task_definition_pb2.TaskSpec | None = self.__dict__.get("_spec_cache")
        if cached is None:
            cached = self.__dict__["_spec_cache"] = self.spec()
        return cached

    def bind(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Check the inputs against the signature now, not in the task process."""
        try:
            bound = inspect.signature(self.fn).bind(**inputs)
        except TypeError as e:
            raise ArgumentTypeError(f"inputs do not fit {self.name}(): {e}") from e
        bound.apply_defaults()
        return dict(bound.arguments)

    def spec(self) -> task_definition_pb2.TaskSpec:
        payload = _pickle_function(self.fn)
        command = [sys.executable, "-m", "flyte_run_widget.task.entrypoint"]
        args = ["--inputs", "{{.Inputs}}", "--outputs", "{{.Outputs}}", "--fn", payload]
        env = {"PYTHONUNBUFFERED": "1", **self.env}
        container = tasks_pb2.Container(
            image="local",
            command=command,
            args=args,
            env=[literals_pb2.KeyValuePair(key=k, value=v) for k, v in env.items()],
        )
        meta = tasks_pb2.TaskMetadata(retries=literals_pb2.RetryStrategy(retries=self.retries))
        if self.timeout is not None:
            meta.timeout.FromTimedelta(self.timeout)
        template = tasks_pb2.TaskTemplate(
            id=core_id.Identifier(resource_type=core_id.TASK, name=self.name, version="local"),
            type=TASK_TYPE,
            metadata=meta,
            interface=_interface(self.fn),
            container=container,
        )
        return task_definition_pb2.TaskSpec(task_template=template, short_name=self.name.rsplit(".", 1)[-1])


def task(
    fn: Callable[..., Any] | None = None,
    *,
    name: str = "",
    timeout: dt.timedelta | float | None = None,
    retries: int = 0,
    env: Mapping[str, str] | None = None,
) -> Any:
    """Decorate a function to set its run options; ``run()`` accepts plain functions too."""
    seconds = dt.timedelta(seconds=timeout) if isinstance(timeout, int | float) else timeout

    def wrap(f: Callable[..., Any]) -> Task:
        return Task(f, name=name, timeout=seconds, retries=retries, env=dict(env or {}))

    return wrap(fn) if fn is not None else wrap


def _pickle_function(fn: Callable[..., Any]) -> str:
    module = sys.modules.get(fn.__module__)
    by_value = module is not None and fn.__module__ != "__main__" and _is_user_module(module)
    if by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        data = cloudpickle.dumps(fn)
    except Exception as e:
        raise ConversionError(f"cannot send {fn.__qualname__} to a task process ({e})") from e
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)
    if len(data) > _MAX_PICKLE:
        raise ConversionError(
            f"{fn.__qualname__} pickles to {len(data) // 1024} KiB (limit {_MAX_PICKLE // 1024} KiB): "
            "it captures large globals; pass large data as inputs or load it inside the function"
        )
    return base64.b64encode(data).decode()


def _is_user_module(module: Any) -> bool:
    """Modules outside site-packages and the stdlib travel by value: the task process may not
    have the notebook's folder on its path."""
    path = getattr(module, "__file__", None) or ""
    libs = {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib", "platstdlib")}
    return bool(path) and not any(path.startswith(lib) for lib in libs)


def _interface(fn: Callable[..., Any]) -> interface_pb2.TypedInterface:
    sig = inspect.signature(fn)
    inputs = [
        interface_pb2.VariableEntry(key=p.name, value=interface_pb2.Variable(type=literal_type(p.annotation)))
        for p in sig.parameters.values()
    ]
    outputs = [
        interface_pb2.VariableEntry(
            key="o0", value=interface_pb2.Variable(type=literal_type(sig.return_annotation))
        )
    ]
    return interface_pb2.TypedInterface(
        inputs=interface_pb2.VariableMap(variables=inputs),
        outputs=interface_pb2.VariableMap(variables=outputs),
    )


@syncify
async def run(
    task: Task | Callable[..., Any] | task_definition_pb2.TaskSpec,
    /,
    *,
    name: str | None = None,
    labels: Mapping[str, str] | None = None,
    **inputs: Any,
) -> Run:
    """Start a run of ``task`` with ``inputs`` on the configured service (CreateRun)."""
    if isinstance(task, task_definition_pb2.TaskSpec):
        spec, values = task, dict(inputs)
    else:
        t = task if isinstance(task, Task) else Task(task)
        spec, values = t.spec(), t.bind(inputs)
    client = get_client()
    cfg = client.config
    req = run_service_pb2.CreateRunRequest(task_spec=spec, inputs=to_inputs(values))
    if name:
        req.run_id.CopyFrom(
            identifier_pb2.RunIdentifier(org=cfg.org, project=cfg.project, domain=cfg.domain, name=name)
        )
    else:
        req.project_id.CopyFrom(
            identifier_pb2.ProjectIdentifier(organization=cfg.org, domain=cfg.domain, name=cfg.project)
        )
    if labels:
        req.run_spec.CopyFrom(run_pb2.RunSpec(labels=run_pb2.Labels(values=dict(labels))))
    try:
        resp = await client.unary(
            "CreateRun", req, what=f"starting a run of {spec.task_template.id.name or 'a task'}"
        )
    except AlreadyFinishedError as e:
        # FAILED_PRECONDITION on CreateRun: nothing had finished; the service cannot run this task.
        raise InvalidArgumentError(str(e), code=e.code, details=e.details) from e
    return Run(resp.run, _client=client)
