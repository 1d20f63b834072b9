"""A Flyte run, mirroring ``flyte.remote.Run``. ``pb2`` is the single source of truth.

run = Run.get("r3k9x2m1q")
run.wait()                     # or: await run.wait.aio()
print(run.phase, run.outputs())
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, Literal

from flyteidl2.common import identifier_pb2, list_pb2
from flyteidl2.workflow import run_definition_pb2, run_service_pb2
from google.protobuf import json_format

from ..client.loop import syncify, syncify_classmethod
from ..client.rpc import Client, get_client
from ..common.idl import new_run
from ..common.phase import is_terminal
from ..errors import NotFoundError, RunNotFoundError
from .action_base import ActionBase, ActionDetails, ActionOutputs, pages, phase_filters, sort_order
from .run_list import listing

if TYPE_CHECKING:
    from .action import Action

__all__ = ["ActionDetails", "ActionOutputs", "Run", "RunDetails"]


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


class Run(ActionBase):
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
    def name(self) -> str:
        return self.pb2.action.id.run.name

    @property
    def task_name(self) -> str:
        meta = self.pb2.action.metadata
        return meta.task.short_name or meta.task.id.name

    @property
    def url(self) -> str:
        rid = self.pb2.action.id.run
        base = self.client.config.console_url
        return f"{base}/v2/domain/{rid.domain}/project/{rid.project}/runs/{rid.name}"

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

    @property
    def _action(self) -> run_definition_pb2.Action:
        return self.pb2.action

    @property
    def _label(self) -> str:
        return f"run {self.name!r}"

    _is_run = True
    _wait_hint = "run.wait()"

    async def _action_details(self) -> ActionDetails:
        return (await self.details.aio()).action_details

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
        filters = phase_filters(in_phase)
        for field, value in (
            ("task_name", task_name),
            ("task_version", task_version),
            ("created_by", created_by_subject),
        ):
            if value:
                filters.append(list_pb2.Filter(function=list_pb2.Filter.EQUAL, field=field, values=[value]))
        sort = sort_order(sort_by)
        project = identifier_pb2.ProjectIdentifier(organization=cfg.org, domain=cfg.domain, name=cfg.project)
        items = pages(
            client,
            "ListRuns",
            lambda page: run_service_pb2.ListRunsRequest(request=page, project_id=project),
            "runs",
            list_pb2.ListRequest(sort_by=sort, filters=filters),
            limit,
            f"the run list of project {cfg.project!r}",
        )
        async for pb2 in items:
            yield cls(pb2, _client=client)

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
    async def actions(
        self, in_phase: Iterable[str | int] | None = None, parent_name: str | None = None
    ) -> AsyncIterator[Action]:
        """Every action of the run (the root ``a0`` first), following ListActions' pages."""
        from .action import Action

        async for action in Action.listall.aio(self.name, in_phase=in_phase, parent_name=parent_name):
            yield action
