"""The widget's side of the action tree: following WatchActions, the node a view selected (its
log, attempts, error and outputs fill the panels) and a node's Abort.

Mixed into ``RunWidget``; everything here runs on the background loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from typing import TYPE_CHECKING, Any

from flyteidl2.workflow import run_definition_pb2, run_service_pb2

from ..client.streams import follow_action, follow_actions
from ..common.phase import is_success, is_terminal
from ..errors import FlyteRunWidgetError
from ..remote.action import Action
from .batches import AttemptLog
from .tree import ActionTree


def outputs_text(named: dict[str, Any], limit: int = 10_000) -> str:
    text = "\n".join(f"{k} = {v!r}" for k, v in named.items()) or "(no outputs)"
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


logger = logging.getLogger(__name__)

#: GetActionDetails calls at once for the rows a view shows without details (flyte backend).
DETAILS_CONCURRENCY = 4
#: Rows one request may ask details for (a view asks for what it shows: a screenful).
MAX_WANTED = 200


class TreeFeed:
    """State and jobs of the tree. ``RunWidget`` provides ``run``, ``_spawn``, ``_logs``,
    ``_pending``, ``send``, the panel traits and ``_panels_from``."""

    run: Any
    selected: str
    error: Any
    outputs: Any
    log_attempts: Any
    tree_size: Any
    _logs: dict[int, AttemptLog]
    _pending: asyncio.Event

    if TYPE_CHECKING:

        def _spawn(self, coro: Any, what: str) -> concurrent.futures.Future[Any]: ...
        def _set_connection(self, state: str, message: str) -> None: ...
        def _add_notice(self, text: str) -> None: ...
        def _panels_from(self, details: run_definition_pb2.ActionDetails, action_id: Any = None) -> None: ...
        def send(self, content: Any, buffers: Any = None) -> None: ...
        def hold_sync(self) -> Any: ...
        async def _flusher(self) -> None: ...

    def _init_tree(self) -> None:
        self._tree = ActionTree()
        self._tree_done = False
        self._focus_jobs: set[concurrent.futures.Future[Any]] = set()
        self._aborting_actions: set[str] = set()
        self._details_asked: set[str] = set()
        self._details_gate = asyncio.Semaphore(DETAILS_CONCURRENCY)
        self._flusher_job: concurrent.futures.Future[Any] | None = None

    @property
    def _root_name(self) -> str:
        return str(self.run.pb2.action.id.name)

    def _focused_root(self) -> bool:
        return self.selected in ("", self._root_name)

    # -- following the tree -------------------------------------------------------------------

    async def _follow_tree(self) -> None:
        try:
            run_id = self.run.pb2.action.id.run
            stream = follow_actions(self.run.client, run_id, self._set_connection, patience=None)
            async for batch in stream:
                if self._tree.merge(batch):
                    self.tree_size = len(self._tree.nodes)
                    self._pending.set()
        except FlyteRunWidgetError as e:
            logger.warning("run %s: stopped following its actions: %s", self.run.name, e)
            self._add_notice(f"the action tree stopped following the run: {e}")
        finally:
            self._tree_done = True
            self._pending.set()

    def _flush_tree(self) -> None:
        if self._tree.pending():
            for msg in self._tree.drain():
                self.send(msg)

    async def _fetch_details(self, name: str) -> None:
        async with self._details_gate:
            resp = await self.run.client.unary(
                "GetActionDetails",
                run_service_pb2.GetActionDetailsRequest(action_id=self._action_id(name)),
                what=f"action {name!r} of run {self.run.name!r}",
            )
        if self._tree.merge_details(resp.details):
            self._pending.set()

    def _action_id(self, name: str) -> Any:
        aid = type(self.run.pb2.action.id)()
        aid.CopyFrom(self.run.pb2.action.id)
        aid.name = name
        return aid

    # -- messages from the views ----------------------------------------------------------------

    def _handle_tree(self, kind: Any, content: dict[str, Any]) -> bool:
        """Answer a tree message; False if ``kind`` is not one."""
        if kind == "tree_request":
            for msg in self._tree.replay():
                self.send(msg)
        elif kind == "select":
            name = content.get("name")
            if isinstance(name, str) and (name in self._tree.rows or name in ("", self._root_name)):
                self._select(name)
        elif kind == "abort_action":
            name = content.get("name")
            if isinstance(name, str) and name in self._tree.rows and name != self._root_name:
                reason = str(content.get("reason") or "Aborted from the notebook widget")
                self._request_action_abort(name, reason)
        elif kind == "tree_want":
            names = content.get("names")
            if isinstance(names, list):
                for name in names[:MAX_WANTED]:
                    if isinstance(name, str) and name in self._tree.rows and name not in self._details_asked:
                        self._details_asked.add(name)
                        self._spawn(self._fetch_details(name), f"reading the details of action {name!r}")
        else:
            return False
        return True

    def _select(self, name: str) -> None:
        """Show ``name``'s log, attempts, error and outputs in the panels ("" or the root's
        name: the run's own). The previous action's log jobs stop and the views drop its lines."""
        name = "" if name == self._root_name else name
        if name == self.selected:
            return
        for fut in list(self._focus_jobs):
            fut.cancel()
        self._focus_jobs.clear()
        self._logs.clear()
        with self.hold_sync():
            self.selected = name
            self.error = {}
            self.outputs = ""
            self.log_attempts = []
        self.send({"type": "logs_reset"})
        self._focus_job(self._follow_focus(name or self._root_name), f"following action {name!r}")
        if self._flusher_job is not None and self._flusher_job.done():  # it ends with the run
            self._flusher_job = self._spawn(self._flusher(), "sending log lines to the view")

    def _focus_job(self, coro: Any, what: str) -> None:
        """A job of the selected action: cancelled when another is selected."""
        fut = self._spawn(coro, what)
        self._focus_jobs.add(fut)
        fut.add_done_callback(self._focus_jobs.discard)

    async def _follow_focus(self, name: str) -> None:
        """The selected action's details into the panels, and its attempts' logs."""
        aid = self._action_id(name)
        key = "" if name == self._root_name else name
        details: run_definition_pb2.ActionDetails | None = None
        async for details in follow_action(self.run.client, aid, self._set_connection, patience=None):
            if self.selected != key:
                return
            if self._tree.merge_details(details):
                self._pending.set()
            self._panels_from(details, aid)
        if details is not None and is_success(details.status.phase):
            action = Action(run_definition_pb2.Action(id=aid, status=details.status), _client=self.run.client)
            out = await action.outputs.aio()
            if self.selected == key:
                self.outputs = outputs_text(out.named)

    # -- a node's Abort ---------------------------------------------------------------------------

    def _request_action_abort(self, name: str, reason: str) -> None:
        if name in self._aborting_actions:
            return
        node = self._tree.nodes[self._tree.rows[name]]
        if is_terminal(node.phase):
            return
        self._aborting_actions.add(name)
        self._spawn(self._abort_action(name, reason), f"aborting action {name!r}")

    async def _abort_action(self, name: str, reason: str) -> None:
        action = Action(run_definition_pb2.Action(id=self._action_id(name)), _client=self.run.client)
        try:
            await action.abort.aio(reason=reason)
            if self._tree.merge_action(action.pb2):
                self._pending.set()
        except FlyteRunWidgetError as e:
            logger.warning("run %s: abort of action %s failed: %s", self.run.name, name, e)
            self._add_notice(f"abort of action {name} failed: {e}")
        finally:
            self._aborting_actions.discard(name)
