"""One action of a run, mirroring ``flyte.remote.Action``: the root ``a0`` or any child a task
started by calling another task. Sync by default, each call with an ``.aio()`` twin.

for action in Action.listall("r3k9x2m1q", in_phase=["failed"]):
    print(action.name, action.parent, action.group, action.attempts)
    action.show_logs()
run.actions()                  # the same for a Run
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, Literal

from flyteidl2.common import identifier_pb2, list_pb2
from flyteidl2.workflow import run_definition_pb2, run_service_pb2
from google.protobuf import json_format

from ..client.loop import syncify, syncify_classmethod
from ..client.rpc import Client, get_client
from ..errors import ArgumentValueError
from .action_base import ActionBase, ActionDetails, check_int, pages, phase_filters, sort_order


class Action(ActionBase):
    """An action on the Flyte Run service. Create with ``Action.get(run_name, name)``,
    ``Action.listall(run_name)`` or ``run.actions()``."""

    def __init__(
        self,
        pb2: run_definition_pb2.Action,
        _details: ActionDetails | None = None,
        *,
        _client: Client | None = None,
    ) -> None:
        self.pb2 = pb2
        self._details = _details
        self._client = _client

    # -- local state ------------------------------------------------------------------------

    @property
    def _action(self) -> run_definition_pb2.Action:
        return self.pb2

    @property
    def _label(self) -> str:
        return f"action {self.name!r} of run {self.run_name!r}"

    @property
    def name(self) -> str:
        return self.pb2.id.name

    @property
    def run_name(self) -> str:
        return self.pb2.id.run.name

    @property
    def parent(self) -> str | None:
        """The name of the action this one was started by; None for the root action."""
        return self.pb2.metadata.parent or None

    parent_name = parent  # the flyte SDK's name for it

    @property
    def group(self) -> str | None:
        """The group (``with flyte_run_widget.group("name")``) it was started in, if any."""
        return self.pb2.metadata.group or None

    @property
    def attempts(self) -> int:
        return int(self.pb2.status.attempts)

    @property
    def task_name(self) -> str | None:
        task = self.pb2.metadata.task
        return (task.short_name or task.id.name) if self.pb2.metadata.HasField("task") else None

    def to_dict(self) -> dict[str, Any]:
        return json_format.MessageToDict(self.pb2)

    def __repr__(self) -> str:
        return (
            f"Action(name={self.name!r}, run={self.run_name!r}, phase={self.phase!r}, "
            f"parent={self.parent!r}, group={self.group!r}, attempts={self.attempts})"
        )

    async def _action_details(self) -> ActionDetails:
        return await self.details.aio()

    # -- service calls ----------------------------------------------------------------------

    @syncify_classmethod
    async def get(cls: type[Action], run_name: str, name: str = "a0") -> Action:  # type: ignore[misc]
        """Fetch one action of a run by name (``a0`` is the root) in the configured project."""
        client = get_client()
        cfg = client.config
        rid = identifier_pb2.RunIdentifier(org=cfg.org, project=cfg.project, domain=cfg.domain, name=run_name)
        aid = identifier_pb2.ActionIdentifier(run=rid, name=name)
        resp = await client.unary(
            "GetActionDetails",
            run_service_pb2.GetActionDetailsRequest(action_id=aid),
            what=f"action {name!r} of run {run_name!r}",
        )
        d = resp.details
        pb2 = run_definition_pb2.Action(id=d.id, metadata=d.metadata, status=d.status)
        return cls(pb2, ActionDetails(d), _client=client)

    @syncify_classmethod
    async def listall(  # type: ignore[misc]
        cls: type[Action],
        for_run_name: str,
        in_phase: Iterable[str | int] | None = None,
        parent_name: str | None = None,
        sort_by: tuple[str, Literal["asc", "desc"]] = ("created_at", "asc"),
        limit: int | None = None,
    ) -> AsyncIterator[Action]:
        """Iterate the actions of a run, following ListActions' pages: only those in
        ``in_phase``, only the direct children of ``parent_name``, at most ``limit``."""
        if limit is not None:
            check_int("limit", limit)
            if limit < 1:
                raise ArgumentValueError(f"limit must be 1 or more, not {limit}")
        client = get_client()
        cfg = client.config
        filters = phase_filters(in_phase)
        if parent_name:
            filters.append(
                list_pb2.Filter(function=list_pb2.Filter.EQUAL, field="parent_name", values=[parent_name])
            )
        sort = sort_order(sort_by)
        run_id = identifier_pb2.RunIdentifier(
            org=cfg.org, project=cfg.project, domain=cfg.domain, name=for_run_name
        )
        items = pages(
            client,
            "ListActions",
            lambda page: run_service_pb2.ListActionsRequest(request=page, run_id=run_id),
            "actions",
            list_pb2.ListRequest(sort_by=sort, filters=filters),
            limit,
            f"the actions of run {for_run_name!r}",
        )
        async for pb2 in items:
            yield cls(pb2, _client=client)

    @syncify
    async def details(self) -> ActionDetails:
        """Phase, attempts, error and spec from GetActionDetails; cached once it is final."""
        if self._details is not None and self._details.done():
            return self._details
        resp = await self.client.unary(
            "GetActionDetails",
            run_service_pb2.GetActionDetailsRequest(action_id=self.pb2.id),
            what=self._label,
        )
        self._details = ActionDetails(resp.details)
        self._update(resp.details)
        return self._details

    @syncify
    async def sync(self) -> Action:
        """Refresh local state from the service and return self."""
        await self.details.aio()
        return self
