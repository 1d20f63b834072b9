"""A Flyte run, mirroring ``flyte.remote.Run``. ``pb2`` is the single source of truth.

run = Run.get("r3k9x2m1q")
run.wait()                     # or: await run.wait.aio()
print(run.phase, run.outputs())
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, Literal

from flyteidl2.common import identifier_pb2, list_pb2
from flyteidl2.workflow import run_definition_pb2, run_service_pb2
from google.protobuf import json_format

from ..client import loop as _loop
from ..client.loop import syncify, syncify_classmethod
from ..client.rpc import Client, get_client
from ..client.streams import ConnectionCallback, follow_action
from ..common.idl import error_code, new_run
from ..common.phase import friendly_phase, is_terminal, raw_phase
from ..errors import (
    AlreadyFinishedError,
    ArgumentTypeError,
    ArgumentValueError,
    NotFoundError,
    RunNotFinishedError,
    RunNotFoundError,
)
from .literals import from_named
from .run_list import listing

PAGE_SIZE = 100


def _check_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be a whole number, not {value!r}")


class ActionDetails:
    """One snapshot of the run's root action: phase, attempts, error."""

    def __init__(self, pb2: run_definition_pb2.ActionDetails) -> None:
        self.pb2 = pb2

    @property
    def name(self) -> str:
        return self.pb2.id.run.name

    @property
    def raw_phase(self) -> int:
        return int(self.pb2.status.phase)

    @property
    def phase(self) -> str:
        return friendly_phase(self.raw_phase)

    @property
    def attempts(self) -> int:
        return int(self.pb2.status.attempts)

    @property
    def error_info(self) -> run_definition_pb2.ErrorInfo | None:
        return self.pb2.error_info if self.pb2.HasField("error_info") else None

    @property
    def abort_info(self) -> run_definition_pb2.AbortInfo | None:
        return self.pb2.abort_info if self.pb2.HasField("abort_info") else None

    def done(self) -> bool:
        return is_terminal(self.raw_phase)

    def __repr__(self) -> str:
        return f"ActionDetails(name={self.name!r}, phase={self.phase!r}, attempts={self.attempts})"


class RunDetails:
    """``GetRunDetails``: the run spec and the root action's details."""

    def __init__(self, pb2: run_definition_pb2.RunDetails) -> None:
        self.pb2 = pb2
        self.action_details = ActionDetails(pb2.action)

    @property
    def name(self) -> str:
        return self.action_details.name

    @property
    def phase(self) -> str:
        return self.action_details.phase

    def done(self) -> bool:
        return self.action_details.done()

    def to_dict(self) -> dict[str, Any]:
        return json_format.MessageToDict(self.pb2)

    def __repr__(self) -> str:
        return f"RunDetails(name={self.name!r}, phase={self.phase!r})"


class ActionOutputs(tuple):  # type: ignore[type-arg]
    """A task's outputs in order (``o0``, ``o1``, ...), with ``.named`` for every name."""

    named: dict[str, Any]

    def __new__(cls, named: dict[str, Any]) -> ActionOutputs:
        self = super().__new__(cls, named.values())
        self.named = named
        return self

    def __repr__(self) -> str:
        return f"ActionOutputs({self.named!r})"


class Run:
    """A run on the Flyte Run service. Create with ``Run.get(name)``, ``Run.listall()`` or
    ``flyte_run_widget.run(task)``."""

    def __init__(
        self,
        pb2: run_definition_pb2.Run,
        _details: RunDetails | None = None,
        *,
        _client: Client | None = None,
    ) -> None:
        self.pb2 = pb2
        self._details = _details
        self._client = _client
        self._widget: Any = None

    # -- local state ------------------------------------------------------------------------

    @property
    def client(self) -> Client:
        return self._client or get_client()

    @property
    def name(self) -> str:
        return self.pb2.action.id.run.name

    @property
    def action_id(self) -> identifier_pb2.ActionIdentifier:
        return self.pb2.action.id

    @property
    def raw_phase(self) -> int:
        return int(self.pb2.action.status.phase)

    @property
    def phase(self) -> str:
        return friendly_phase(self.raw_phase)

    @property
    def task_name(self) -> str:
        meta = self.pb2.action.metadata
        return meta.task.short_name or meta.task.id.name

    @property
    def url(self) -> str:
        rid = self.pb2.action.id.run
        base = self.client.config.console_url
        return f"{base}/v2/domain/{rid.domain}/project/{rid.project}/runs/{rid.name}"

    def done(self) -> bool:
        """Whether the run ended, judged from local state (``sync()`` refreshes it)."""
        return is_terminal(self.raw_phase)

    def to_dict(self) -> dict[str, Any]:
        return json_format.MessageToDict(self.pb2)

    def to_json(self) -> str:
        return json_format.MessageToJson(self.pb2)

    def __repr__(self) -> str:
        return f"Run(name={self.name!r}, phase={self.phase!r})"

    def widget(self, **kwargs: Any) -> Any:
        """The live notebook widget for this run (one per run unless options differ)."""
        from ..notebook.widget import RunWidget

        if kwargs or self._widget is None or self._widget._closed:
            self._widget = RunWidget(self, **kwargs)
        return self._widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget()._repr_mimebundle_(**kwargs)

    def _update(self, details: run_definition_pb2.ActionDetails) -> None:
        action = self.pb2.action
        action.status.CopyFrom(details.status)
        action.metadata.CopyFrom(details.metadata)

    # -- service calls ----------------------------------------------------------------------

    @syncify_classmethod
    async def get(cls: type[Run], name: str) -> Run:  # type: ignore[misc]
        """Fetch a run by name in the configured org, project and domain."""
        client = get_client()
        cfg = client.config
        rid = identifier_pb2.RunIdentifier(org=cfg.org, project=cfg.project, domain=cfg.domain, name=name)
        try:
            resp = await client.unary(
                "GetRunDetails", run_service_pb2.GetRunDetailsRequest(run_id=rid), what=f"run {name!r}"
            )
        except NotFoundError as e:
            raise RunNotFoundError(str(e), code=e.code, details=e.details) from e
        details = resp.details
        action = details.action
        pb2 = new_run(
            run_definition_pb2.Action(id=action.id, metadata=action.metadata, status=action.status),
            details.run_spec.labels.values,
        )
        return cls(
            pb2, RunDetails(details) if is_terminal(details.action.status.phase) else None, _client=client
        )

    @listing
    async def listall(  # type: ignore[misc]
        cls: type[Run],
        in_phase: Iterable[str | int] | None = None,
        task_name: str | None = None,
        task_version: str | None = None,
        created_by_subject: str | None = None,
        sort_by: tuple[str, Literal["asc", "desc"]] = ("created_at", "asc"),
        limit: int = 100,
    ) -> AsyncIterator[Run]:
        """Iterate runs of the configured project, following pages until ``limit``. Shown in a
        notebook cell, the result is a live table of those runs (``RunList``)."""
        client = get_client()
        cfg = client.config
        filters = []
        phases = [str(raw_phase(p)) for p in (in_phase or [])]
        if phases:
            fn = list_pb2.Filter.VALUE_IN if len(phases) > 1 else list_pb2.Filter.EQUAL
            filters.append(list_pb2.Filter(function=fn, field="phase", values=phases))
        for field, value in (
            ("task_name", task_name),
            ("task_version", task_version),
            ("created_by", created_by_subject),
        ):
            if value:
                filters.append(list_pb2.Filter(function=list_pb2.Filter.EQUAL, field=field, values=[value]))
        key, direction = sort_by
        if direction not in ("asc", "desc"):
            raise ArgumentValueError(f"sort_by direction must be 'asc' or 'desc', not {direction!r}")
        sort = list_pb2.Sort(
            key=key,
            direction=list_pb2.Sort.ASCENDING if direction == "asc" else list_pb2.Sort.DESCENDING,
        )
        project = identifier_pb2.ProjectIdentifier(organization=cfg.org, domain=cfg.domain, name=cfg.project)
        token, yielded = "", 0
        while yielded < limit:
            req = run_service_pb2.ListRunsRequest(
                request=list_pb2.ListRequest(
                    limit=min(PAGE_SIZE, limit - yielded), token=token, sort_by=sort, filters=filters
                ),
                project_id=project,
            )
            resp = await client.unary("ListRuns", req, what=f"the run list of project {cfg.project!r}")
            for pb2 in resp.runs:
                yield cls(pb2, _client=client)
                yielded += 1
                if yielded >= limit:
                    return
            token = resp.token
            if not token or not resp.runs:
                return

    @syncify
    async def details(self) -> RunDetails:
        """The run spec and root action details; cached once the run is terminal."""
        if self._details is not None and self._details.done():
            return self._details
        resp = await self.client.unary(
            "GetRunDetails",
            run_service_pb2.GetRunDetailsRequest(run_id=self.pb2.action.id.run),
            what=f"run {self.name!r}",
        )
        self._details = RunDetails(resp.details)
        if resp.details.action.id == self.pb2.action.id:  # not when made around a child action
            self._update(resp.details.action)
        return self._details

    @syncify
    async def sync(self) -> Run:
        """Refresh local state from the service and return self."""
        await self.details.aio()
        return self

    @syncify
    async def abort(self, reason: str = "Aborted from flyte-run-widget") -> None:
        """Ask the service to abort the run; local state follows once it confirms. A Run made
        around a child action (a ``flyte.remote.Action`` shown as the widget) aborts that action."""
        action = self.pb2.action
        try:
            if action.metadata.parent:
                await self.client.unary(
                    "AbortAction",
                    run_service_pb2.AbortActionRequest(action_id=action.id, reason=reason),
                    what=f"aborting action {action.id.name!r} of run {self.name!r}",
                )
            else:
                await self.client.unary(
                    "AbortRun",
                    run_service_pb2.AbortRunRequest(run_id=action.id.run, reason=reason),
                    what=f"aborting run {self.name!r}",
                )
        except AlreadyFinishedError:
            await self.details.aio()
            _loop.warn(f"run {self.name!r} already finished ({self.phase}); nothing to abort")
            return
        except NotFoundError:
            return
        await self.details.aio()

    @syncify
    async def watch(
        self, cache_data_on_done: bool = False, *, on_connection: ConnectionCallback | None = None
    ) -> AsyncIterator[ActionDetails]:
        """Yield the root action's details at every change until it is terminal."""
        async for details in follow_action(self.client, self.action_id, on_connection):
            self._update(details)
            yield ActionDetails(details)
        if cache_data_on_done and self.done():
            await self._action_data()

    @syncify
    async def wait(self, quiet: bool = False, wait_for: Literal["terminal", "running"] = "terminal") -> None:
        """Block until the run ends (or starts running), drawing a live panel unless ``quiet``."""
        from .console import WaitDisplay

        if wait_for not in ("terminal", "running"):
            raise ArgumentValueError(f"wait_for must be 'terminal' or 'running', not {wait_for!r}")
        with WaitDisplay(self, quiet=quiet) as display:
            async for details in self.watch.aio():
                display.update(details)
                if wait_for == "running" and details.raw_phase >= 4:
                    break
            if self.done():
                display.finish(await self.details.aio())

    async def _action_data(self) -> run_service_pb2.GetActionDataResponse:
        cached = getattr(self, "_data", None)
        if cached is not None and cached.HasField("outputs"):
            return cached
        resp = await self.client.unary(
            "GetActionData",
            run_service_pb2.GetActionDataRequest(action_id=self.action_id),
            what=f"data of run {self.name!r}",
        )
        if self.done():
            self._data = resp
        return resp

    @syncify
    async def inputs(self) -> dict[str, Any]:
        """The run's inputs as Python values."""
        return from_named((await self._action_data()).inputs.literals)

    @syncify
    async def outputs(self) -> ActionOutputs:
        """The run's outputs as Python values; raises ``RunFailedError`` if it did not succeed."""
        from ..common.phase import is_success
        from ..errors import RunFailedError

        if not self.done():
            await self.sync.aio()
        if self.done() and not is_success(self.raw_phase):
            details = await self.details.aio()
            err = details.action_details.error_info
            raise RunFailedError(
                f"run {self.name!r} {self.phase}: {err.message if err else 'no outputs'}",
                phase=self.phase,
                kind=run_definition_pb2.ErrorInfo.Kind.Name(err.kind) if err else "",
                code=error_code(err) if err else "",
            )
        if not self.done():
            raise RunNotFinishedError(f"run {self.name!r} is still {self.phase}; call run.wait() first")
        return ActionOutputs(from_named((await self._action_data()).outputs.literals))

    @syncify
    async def show_logs(
        self,
        attempt: int | None = None,
        max_lines: int | None = None,
        show_ts: bool = False,
        raw: bool = False,
        filter_system: bool = False,
    ) -> None:
        """Print the attempt's log (latest by default, else 1, 2, ...), following it while the
        run works: the last ``max_lines`` lines (default 100) in a live panel, or with ``raw`` as
        plain text: every line, or the last ``max_lines`` so far and then each new one."""
        from .console import print_logs

        if attempt is not None:
            _check_int("attempt", attempt)
            if attempt < 1:
                raise ArgumentValueError(
                    f"attempts count from 1, not {attempt}: pass attempt=1 for the first, or leave"
                    " attempt out for the latest"
                )
        if max_lines is not None:
            _check_int("max_lines", max_lines)
            if max_lines < 1:
                raise ArgumentValueError(f"max_lines must be 1 or more, not {max_lines}")

        await print_logs(
            self, attempt=attempt, max_lines=max_lines, show_ts=show_ts, raw=raw, filter_system=filter_system
        )
