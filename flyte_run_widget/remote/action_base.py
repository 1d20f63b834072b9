"""What a run and each of its actions share: both are one action on the service, with a phase,
attempts, a log, inputs and outputs. ``Run`` (the root action) and ``Action`` (any action) are
built on ``ActionBase``; they differ only in how they fetch their details and name themselves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Literal

from flyteidl2.common import identifier_pb2, list_pb2
from flyteidl2.workflow import run_definition_pb2, run_service_pb2

from ..client import loop as _loop
from ..client.loop import syncify
from ..client.rpc import Client, get_client
from ..client.streams import ConnectionCallback, follow_action
from ..common.idl import error_code
from ..common.phase import friendly_phase, is_success, is_terminal, raw_phase
from ..errors import (
    AlreadyFinishedError,
    ArgumentTypeError,
    ArgumentValueError,
    NotFoundError,
    RunFailedError,
    RunNotFinishedError,
)
from .literals import from_named

PAGE_SIZE = 100


def check_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be a whole number, not {value!r}")


def phase_filters(in_phase: Iterable[str | int] | None) -> list[list_pb2.Filter]:
    """The list filter for ``in_phase`` (names or numbers), as ListRuns and ListActions take it."""
    phases = [str(raw_phase(p)) for p in (in_phase or [])]
    if not phases:
        return []
    fn = list_pb2.Filter.VALUE_IN if len(phases) > 1 else list_pb2.Filter.EQUAL
    return [list_pb2.Filter(function=fn, field="phase", values=phases)]


def sort_order(sort_by: tuple[str, Literal["asc", "desc"]]) -> list_pb2.Sort:
    key, direction = sort_by
    if direction not in ("asc", "desc"):
        raise ArgumentValueError(f"sort_by direction must be 'asc' or 'desc', not {direction!r}")
    return list_pb2.Sort(
        key=key, direction=list_pb2.Sort.ASCENDING if direction == "asc" else list_pb2.Sort.DESCENDING
    )


async def pages(
    client: Client,
    rpc: str,
    request: Callable[[list_pb2.ListRequest], Any],
    field: str,
    list_request: list_pb2.ListRequest,
    limit: int | None,
    what: str,
) -> AsyncIterator[Any]:
    """Every item of a List RPC (ListRuns, ListActions), following its page tokens until
    ``limit`` items (None: all). ``request`` wraps each page's ListRequest in the RPC's request."""
    token, yielded = "", 0
    while limit is None or yielded < limit:
        page = list_pb2.ListRequest()
        page.CopyFrom(list_request)
        page.limit = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - yielded)
        page.token = token
        resp = await client.unary(rpc, request(page), what=what)
        items = getattr(resp, field)
        for item in items:
            yield item
            yielded += 1
            if limit is not None and yielded >= limit:
                return
        token = resp.token
        if not token or not items:
            return


class ActionDetails:
    """One snapshot of an action: phase, attempts, error."""

    def __init__(self, pb2: run_definition_pb2.ActionDetails) -> None:
        self.pb2 = pb2

    @property
    def name(self) -> str:
        return self.pb2.id.run.name

    @property
    def action_name(self) -> str:
        return self.pb2.id.name

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


class ActionOutputs(tuple):  # type: ignore[type-arg]
    """A task's outputs in order (``o0``, ``o1``, ...), with ``.named`` for every name."""

    named: dict[str, Any]

    def __new__(cls, named: dict[str, Any]) -> ActionOutputs:
        self = super().__new__(cls, named.values())
        self.named = named
        return self

    def __repr__(self) -> str:
        return f"ActionOutputs({self.named!r})"


class ActionBase:
    """The calls every action answers. A subclass says where its Action message lives
    (``_action``), how it reads its details (``_action_details``) and how it is named in
    messages (``_label``)."""

    _client: Client | None
    _data: run_service_pb2.GetActionDataResponse | None = None

    @property
    def _action(self) -> run_definition_pb2.Action:
        raise NotImplementedError

    @property
    def _label(self) -> str:
        raise NotImplementedError

    async def _action_details(self) -> ActionDetails:
        raise NotImplementedError

    @property
    def client(self) -> Client:
        return self._client or get_client()

    @property
    def action_id(self) -> identifier_pb2.ActionIdentifier:
        return self._action.id

    @property
    def raw_phase(self) -> int:
        return int(self._action.status.phase)

    @property
    def phase(self) -> str:
        return friendly_phase(self.raw_phase)

    def done(self) -> bool:
        """Whether it ended, judged from local state (``sync()`` refreshes it)."""
        return is_terminal(self.raw_phase)

    def _update(self, details: run_definition_pb2.ActionDetails) -> None:
        action = self._action
        action.status.CopyFrom(details.status)
        action.metadata.CopyFrom(details.metadata)

    @syncify
    async def abort(self, reason: str = "Aborted from flyte-run-widget") -> None:
        """Ask the service to abort; local state follows once it confirms. A run (its root
        action) is aborted with AbortRun, any other action and its subtree with AbortAction."""
        action = self._action
        try:
            if action.metadata.parent or not self._is_run:
                await self.client.unary(
                    "AbortAction",
                    run_service_pb2.AbortActionRequest(action_id=action.id, reason=reason),
                    what=f"aborting {self._label}",
                )
            else:
                await self.client.unary(
                    "AbortRun",
                    run_service_pb2.AbortRunRequest(run_id=action.id.run, reason=reason),
                    what=f"aborting {self._label}",
                )
        except AlreadyFinishedError:
            await self._action_details()
            _loop.warn(f"{self._label} already finished ({self.phase}); nothing to abort")
            return
        except NotFoundError:
            return
        await self._action_details()

    _is_run = False
    _wait_hint = "action.wait()"

    @syncify
    async def watch(
        self, cache_data_on_done: bool = False, *, on_connection: ConnectionCallback | None = None
    ) -> AsyncIterator[ActionDetails]:
        """Yield the action's details at every change until it is terminal."""
        async for details in follow_action(self.client, self.action_id, on_connection):
            self._update(details)
            yield ActionDetails(details)
        if cache_data_on_done and self.done():
            await self._action_data()

    @syncify
    async def wait(self, quiet: bool = False, wait_for: Literal["terminal", "running"] = "terminal") -> None:
        """Block until it ends (or starts running), drawing a live panel unless ``quiet``."""
        from .console import WaitDisplay

        if wait_for not in ("terminal", "running"):
            raise ArgumentValueError(f"wait_for must be 'terminal' or 'running', not {wait_for!r}")
        with WaitDisplay(self._label, self, quiet=quiet) as display:
            async for details in self.watch.aio():
                display.update(details)
                if wait_for == "running" and details.raw_phase >= 4:
                    break
            if self.done():
                display.finish(await self._action_details())

    async def _action_data(self) -> run_service_pb2.GetActionDataResponse:
        cached = self._data
        if cached is not None and cached.HasField("outputs"):
            return cached
        resp = await self.client.unary(
            "GetActionData",
            run_service_pb2.GetActionDataRequest(action_id=self.action_id),
            what=f"data of {self._label}",
        )
        if self.done():
            self._data = resp
        return resp

    @syncify
    async def inputs(self) -> dict[str, Any]:
        """The inputs as Python values."""
        return from_named((await self._action_data()).inputs.literals)

    @syncify
    async def outputs(self) -> ActionOutputs:
        """The outputs as Python values; raises ``RunFailedError`` if it did not succeed."""
        if not self.done():
            await self._action_details()
        if self.done() and not is_success(self.raw_phase):
            err = (await self._action_details()).error_info
            raise RunFailedError(
                f"{self._label} {self.phase}: {err.message if err else 'no outputs'}",
                phase=self.phase,
                kind=run_definition_pb2.ErrorInfo.Kind.Name(err.kind) if err else "",
                code=error_code(err) if err else "",
            )
        if not self.done():
            raise RunNotFinishedError(f"{self._label} is still {self.phase}; call {self._wait_hint} first")
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
        """Print the attempt's log (latest by default, else 1, 2, ...), following it while it
        works: the last ``max_lines`` lines (default 100) in a live panel, or with ``raw`` as
        plain text: every line, or the last ``max_lines`` so far and then each new one."""
        from .console import print_logs

        if attempt is not None:
            check_int("attempt", attempt)
            if attempt < 1:
                raise ArgumentValueError(
                    f"attempts count from 1, not {attempt}: pass attempt=1 for the first, or leave"
                    " attempt out for the latest"
                )
        if max_lines is not None:
            check_int("max_lines", max_lines)
            if max_lines < 1:
                raise ArgumentValueError(f"max_lines must be 1 or more, not {max_lines}")
        details = await self._action_details()
        await print_logs(
            self,
            details,
            attempt=attempt,
            max_lines=max_lines,
            show_ts=show_ts,
            raw=raw,
            filter_system=filter_system,
        )
