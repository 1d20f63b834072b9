"""Runs each action's attempts as local processes and records every phase change.

executor = Executor(layout, store, hub)
executor.start(details, run_spec, inputs)                 # a run's root action
executor.start_child(details, run_spec, input_uri, base)  # an enqueued child (see children.py)
await executor.abort("rabc123def", "no longer needed")    # the run's whole tree
await executor.abort_tree("rabc123def", "x1", "enough")   # one action and its descendants
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from flyteidl2.task import common_pb2, run_pb2
from flyteidl2.workflow import run_definition_pb2 as rd

from . import model
from .attempt_command import command_line, move_function, started_text, template_values
from .children import ChildQueue
from .hub import ALL_RUNS, Hub, action_key, log_key, run_key, tree_key
from .live_action import LiveAction, live_key
from .log_files import LogWriter, trim_partial_record
from .paths import Layout
from .process import SYSTEM_LINE, AttemptFiles, TaskProcess
from .results import Outcome, failure, read_outcome
from .sdk_tasks import SdkSettings, is_flyte_runtime, runtime_env
from .store import ROOT_ACTION, Store, local_path
from .task_env import Reach, task_env
from .tree_store import open_subtree

log = logging.getLogger(__name__)

# Where other modules have always found them.
__all__ = ["Executor", "LiveAction", "SdkSettings", "live_key"]


class Executor:
    """``max_running`` > 0 caps the runs whose tasks run at once: the others wait QUEUED, in
    the order they came, until one ends (or they are aborted, never having started).
    ``max_children`` caps the child actions running at once (see ``children.ChildQueue``).
    ``reach`` tells task processes how to call the service back."""

    def __init__(
        self,
        layout: Layout,
        store: Store,
        hub: Hub,
        grace: float = 5.0,
        max_running: int = 0,
        max_children: int = 0,
        reach: Reach | None = None,
        sdk: SdkSettings | None = None,
    ) -> None:
        self.sdk = sdk
        self.layout = layout
        self.store = store
        self.hub = hub
        self.grace = grace
        self.max_running = max_running
        self.reach = reach or Reach()
        self.children = ChildQueue(self, max_children)
        self._live: dict[str | tuple[str, str], LiveAction] = {}
        self._stoppers: set[asyncio.Task[Any]] = set()
        self._holding = 0  # runs holding one of the max_running slots
        self._slot_freed = asyncio.Event()

    # -- public ---------------------------------------------------------------------------

    def start(self, details: rd.ActionDetails, run_spec: run_pb2.RunSpec, inputs: bytes) -> None:
        run = details.id.run.name
        inputs_file = self.layout.inputs_file(run, details.id.name)
        inputs_file.parent.mkdir(parents=True, exist_ok=True)
        inputs_file.write_bytes(inputs)
        self.launch(LiveAction(details=details, run_spec=run_spec))

    def start_child(
        self, details: rd.ActionDetails, run_spec: run_pb2.RunSpec, input_uri: str, base: str
    ) -> None:
        """Run an enqueued child (stored already) now, or once a child slot is free."""
        self.children.submit(
            LiveAction(details=details, run_spec=run_spec, input_uri=input_uri, output_base=base)
        )

    def adopt(self, live: LiveAction, process: TaskProcess) -> None:
        """Follow an attempt a previous service started (``recovery.py``) to its end."""
        self._live[live.key] = live
        live.task = asyncio.create_task(self._run(live, process), name=f"action {live.key} (adopted)")

    def launch(self, live: LiveAction) -> None:
        self._live[live.key] = live
        live.task = asyncio.create_task(self._run(live), name=f"action {live.key}")

    def live(self, run: str, action: str) -> LiveAction | None:
        return self._live.get(live_key(run, action))

    async def abort(self, run: str, reason: str) -> bool:
        """Stop a run's whole tree; False when its root is not running in this service."""
        return await self.abort_tree(run, ROOT_ACTION, reason)

    async def abort_tree(self, run: str, action: str, reason: str) -> bool:
        """Stop ``action`` and every descendant not yet final (the task runtime stops none of
        its children itself): running ones are signalled, queued ones end ABORTED without
        starting. False when ``action`` itself is not running in this service."""
        reason = reason or "aborted"
        was_live = live_key(run, action) in self._live
        waits = []
        names = open_subtree(self.store, run, action) or [action]
        # Queued ones first, so that no slot a stopped one frees starts one of them.
        queued = [n for n in names if n != action and live_key(run, n) not in self._live]
        for start in range(0, len(queued), 200):
            self.children.abort_queued(run, queued[start : start + 200], reason)
            await asyncio.sleep(0)  # thousands of queued children: let other calls through
        for name in names:
            live = self._live.get(live_key(run, name))
            if live is None:
                continue
            if live.abort_reason is None:
                live.abort_reason = reason
                if live.process is not None:
                    self._stop_soon(live.process)
                self._wake_queued()  # a run waiting for a slot ends without starting
            waits.append(live.done.wait())
        # Answer once the abort is recorded, so the caller's next read shows ABORTED.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), self.grace + 10)
        return was_live

    async def shutdown(self, reason: str) -> None:
        await asyncio.gather(*(self.abort_tree(*_split(k), reason) for k in list(self._live)))

    def recover(self) -> int:
        """Take back what a previous service left unfinished (see ``recovery.recover``)."""
        from .recovery import recover

        return recover(self)

    # -- the attempt loop -----------------------------------------------------------------

    async def _run(self, live: LiveAction, adopted: TaskProcess | None = None) -> None:
        details = live.details
        run = details.id.run.name
        meta = details.task.task_template.metadata
        retries = meta.retries.retries if meta.HasField("retries") else 0
        holds_slot = False
        root = details.id.name == ROOT_ACTION
        try:
            # An adopted task runs already: it takes its slot without waiting. Children hold
            # the child slot ChildQueue gave them instead.
            holds_slot = root and await self._take_slot(live, wait=adopted is None)
            while True:
                outcome = await self._attempt(live, adopted)
                adopted = None
                attempts = len(details.attempts)
                if outcome.retryable and attempts <= retries and live.abort_reason is None:
                    self._log_note(details, f"retrying: attempt {attempts + 1} of {retries + 1}")
                    # Saved only after the retry starts: watchers must never see a final phase.
                    model.retry(details, model.now_ns())
                    self._save(details)
                    continue
                self._save(details, outcome.outputs)
                break
        except Exception as exc:  # a bug here must still end the run, not leave it hanging
            log.exception("run %s failed in the executor", run)
            if not model.is_done(details):
                model.fail(
                    details, model.SYSTEM, "ExecutorError", f"local executor error: {exc}", model.now_ns()
                )
                self._save(details)
        finally:
            if holds_slot:
                self._holding -= 1
                self._wake_queued()
            self._live.pop(live.key, None)
            self.children.ended(live)
            live.done.set()
            self.end_descendants(run, details.id.name)

    def end_descendants(self, run: str, action: str) -> None:
        """A child cannot outlive its parent (as on a cluster): what the ended ``action``
        left running or queued is aborted."""
        if len(open_subtree(self.store, run, action)) == 0:
            return
        reason = f"its parent action {action} ended"
        task = asyncio.create_task(self.abort_tree(run, action, reason))
        self._stoppers.add(task)
        task.add_done_callback(self._stoppers.discard)

    async def _take_slot(self, live: LiveAction, wait: bool) -> bool:
        """Whether the run holds a slot (always False without a limit, or once aborted)."""
        if self.max_running <= 0:
            return False
        while wait and self._holding >= self.max_running and live.abort_reason is None:
            await self._slot_freed.wait()  # woken in the order the runs began to wait
        if wait and live.abort_reason is not None:
            return False  # its attempt ends ABORTED without starting the task
        self._holding += 1
        return True

    def _wake_queued(self) -> None:
        self._slot_freed.set()
        self._slot_freed = asyncio.Event()

    async def _attempt(self, live: LiveAction, adopted: TaskProcess | None = None) -> Outcome:
        details = live.details
        run, action = details.id.run.name, details.id.name
        number = model.current(details).attempt
        workdir = self.layout.attempt_dir(run, action, number)
        dirs = {n: workdir / n for n in ("work", "outputs", "raw", "checkpoint")}
        if live.output_base:
            dirs["outputs"] = local_path(live.output_base) / action / str(number)
        if adopted is not None:
            outcome = await self._await_outcome(live, adopted, dirs)
            with LogWriter(self.layout.log_file(run, action, number)) as writer:
                self._finish(live, outcome, writer)
            return outcome
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        previous = self.layout.attempt_dir(run, action, number - 1) / "checkpoint"
        model.current(details).logs_available = True
        if live.abort_reason is None:
            model.advance(details, model.INITIALIZING, model.now_ns())
        self._save(details)
        inputs = local_path(live.input_uri) if live.input_uri else self.layout.inputs_file(run, action)
        values = template_values(details, inputs, dirs, previous if number > 1 else None)
        sdk_python = self.sdk.python if self.sdk is not None else None
        argv = command_line(details.task.task_template.container, values, sdk_python)
        outcome = await self._execute(live, argv, dirs)
        with LogWriter(self.layout.log_file(run, action, number)) as writer:
            self._finish(live, outcome, writer)
        return outcome

    async def _execute(self, live: LiveAction, argv: list[str], dirs: dict[str, Path]) -> Outcome:
        details = live.details
        run, action = details.id.run.name, details.id.name
        number = model.current(details).attempt
        if live.abort_reason is not None:
            return failure(model.USER, "Aborted", live.abort_reason)
        if not argv:
            return failure(model.USER, "NoCommand", "the task's container has no command or args to run")
        try:
            argv = move_function(argv, self.layout.attempt_dir(run, action, number))
        except ValueError as exc:
            return failure(model.USER, "LoadError", str(exc))
        # For whoever debugs the service; the task's log opens with the relay's "started" line.
        log.debug("run %s, action %s, attempt %d runs: %s", run, action, number, shlex.join(argv))
        try:
            process = await TaskProcess.start(
                argv,
                dirs["work"],
                self._env(live),
                self.files(run, action, number),
                self.notifier(log_key(run, action, number)),
                started_text(details),
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            return failure(
                model.USER,
                "CommandNotFound" if isinstance(exc, FileNotFoundError) else "CommandNotStarted",
                f"could not start {argv[0]!r}: {reason}. Check the task's container command.",
            )
        live.process = process
        self.store.record_process(run, action, number, process.pid, process.marker)
        if live.abort_reason is not None:  # the abort came while the process was starting
            self._stop_soon(process)
        else:
            model.advance(details, model.RUNNING, model.now_ns())
            self._save(details)
        return await self._await_outcome(live, process, dirs)

    async def _await_outcome(self, live: LiveAction, process: TaskProcess, dirs: dict[str, Path]) -> Outcome:
        """Wait for the attempt's process (started here or adopted) and read how it ended."""
        details = live.details
        attempt = model.current(details)
        timeout = details.task.task_template.metadata.timeout.ToTimedelta().total_seconds()
        left: float | None = None
        started = model.now_ns()
        if timeout:
            # Counted from RUNNING, so that an adopted attempt keeps its original deadline.
            running = [t for t in attempt.phase_transitions if t.phase == model.RUNNING]
            started = running[-1].start_time.ToNanoseconds() if running else started
            left = max(0.0, timeout - (model.now_ns() - started) / 1e9)
        timed_out = not await process.wait(left)
        status_now = process.status() if not timed_out else None
        if timeout and not timed_out and status_now is not None and status_now.code != 0:
            # Ended by the stop a previous service began when the deadline passed (it was
            # killed during the grace period): still a timeout, not the task's failure.
            timed_out = (model.now_ns() - started) / 1e9 >= timeout
        if timed_out:
            await process.stop(self.grace)
        await process.finish()
        live.process = None
        status = process.status()
        if status.code is None:
            trim_partial_record(process.files.log)  # the relay was killed mid-write, perhaps
        if live.note:
            self._log_note(details, live.note)
            live.note = None
        shown = status.code if status.code is not None else "unknown (the task was killed)"
        self._log_note(details, f"exited with code {shown}")
        if live.abort_reason is not None:
            return failure(model.USER, "Aborted", live.abort_reason)
        if timed_out:
            outcome = failure(model.USER, "Timeout", f"the task ran longer than its timeout of {timeout:g} s")
            outcome.phase = model.TIMED_OUT
            return outcome
        if status.start_error is not None:
            return failure(
                model.USER,
                "CommandNotFound" if status.missing else "CommandNotStarted",
                f"could not start the task's command: {status.start_error}."
                " Check the task's container command.",
            )
        if status.code is None:
            return failure(
                model.SYSTEM,
                "ProcessLost",
                "the task's process ended without recording an exit code (killed from outside the service?)",
            )
        return read_outcome(dirs["outputs"], status.code, status.stderr_tail)

    def _finish(self, live: LiveAction, outcome: Outcome, writer: LogWriter) -> None:
        details = live.details
        now = model.now_ns()
        if live.abort_reason is not None:
            writer.append(time.time_ns(), SYSTEM_LINE, f"aborted: {live.abort_reason}".encode())
            model.abort(details, live.abort_reason, now)
        elif outcome.ok:
            model.advance(details, model.SUCCEEDED, now)
        else:
            writer.append(time.time_ns(), SYSTEM_LINE, f"failed: {outcome.message}".encode())
            model.fail(details, outcome.kind, outcome.code, outcome.message, now, outcome.phase)
        writer.flush()

    # -- helpers --------------------------------------------------------------------------

    def _stop_soon(self, process: TaskProcess) -> None:
        task = asyncio.create_task(process.stop(self.grace))
        self._stoppers.add(task)
        task.add_done_callback(self._stoppers.discard)

    def notifier(self, key: Hashable) -> Callable[[], None]:
        return lambda: self.hub.notify(key)

    def files(self, run: str, action: str, number: int) -> AttemptFiles:
        status = self.layout.attempt_dir(run, action, number) / "status.json"
        return AttemptFiles(log=self.layout.log_file(run, action, number), status=status)

    def run_base(self, run: str) -> Path:
        """Where a run's children get their inputs and outputs (the flyte SDK's run base)."""
        return self.layout.root / "runs" / run / "data"

    def _env(self, live: LiveAction) -> dict[str, str]:
        run = live.details.id.run.name
        base = live.output_base or str(self.run_base(run))
        env = task_env(os.environ, live.run_spec, live.details, self.reach, base)
        if is_flyte_runtime(live.details.task.task_template.container) and self.sdk is not None:
            env.update(runtime_env(self.sdk.python, model.current(live.details).attempt, env.get("PATH", "")))
        return env

    def _log_note(self, details: rd.ActionDetails, note: str) -> None:
        attempt = model.current(details).attempt
        path = self.layout.log_file(details.id.run.name, details.id.name, attempt)
        with LogWriter(path) as writer:
            writer.append(time.time_ns(), SYSTEM_LINE, note.encode())

    def _save(self, details: rd.ActionDetails, outputs: common_pb2.Outputs | None = None) -> None:
        run, action = details.id.run.name, details.id.name
        self.store.save_action(details, outputs)
        attempt = model.current(details).attempt
        self.hub.notify(tree_key(run), action_key(run, action), log_key(run, action, attempt))
        if action == ROOT_ACTION:
            self.hub.notify(run_key(run), ALL_RUNS)


def _split(key: str | tuple[str, str]) -> tuple[str, str]:
    return (key, ROOT_ACTION) if isinstance(key, str) else key
