"""Runs each action's attempts as local processes and records every phase change.

executor = Executor(layout, store, hub)
executor.start(details, run_spec, inputs)
await executor.abort("rabc123def", "no longer needed")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from flyteidl2.task import common_pb2, run_pb2
from flyteidl2.workflow import run_definition_pb2 as rd

from . import model
from .hub import ALL_RUNS, Hub, log_key, run_key
from .logfile import LogWriter
from .paths import Layout
from .process import SYSTEM_LINE, TaskProcess, is_alive, signal_group, start_marker
from .results import Outcome, failure, read_outcome
from .store import Store
from .templates import render

log = logging.getLogger("flyte_run_widget.server")

RESTARTED = "the service restarted while this run was running"


@dataclass
class LiveAction:
    details: rd.ActionDetails
    run_spec: run_pb2.RunSpec
    abort_reason: str | None = None
    process: TaskProcess | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class Executor:
    def __init__(self, layout: Layout, store: Store, hub: Hub, grace: float = 5.0) -> None:
        self.layout = layout
        self.store = store
        self.hub = hub
        self.grace = grace
        self._live: dict[str, LiveAction] = {}
        self._stoppers: set[asyncio.Task[None]] = set()

    # -- public ---------------------------------------------------------------------------

    def start(self, details: rd.ActionDetails, run_spec: run_pb2.RunSpec, inputs: bytes) -> None:
        run = details.id.run.name
        inputs_file = self.layout.inputs_file(run, details.id.name)
        inputs_file.parent.mkdir(parents=True, exist_ok=True)
        inputs_file.write_bytes(inputs)
        live = LiveAction(details=details, run_spec=run_spec)
        self._live[run] = live
        live.task = asyncio.create_task(self._run(live), name=f"run {run}")

    def live(self, run: str) -> rd.ActionDetails | None:
        action = self._live.get(run)
        return action.details if action else None

    async def abort(self, run: str, reason: str) -> bool:
        """Stop a running action; False when it is not running in this service."""
        live = self._live.get(run)
        if live is None:
            return False
        if live.abort_reason is None:
            live.abort_reason = reason or "aborted"
            if live.process is not None:
                self._stop_soon(live.process)
        # Answer once the abort is recorded, so the caller's next read shows ABORTED.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(live.done.wait(), self.grace + 10)
        return True

    async def shutdown(self, reason: str) -> None:
        await asyncio.gather(*(self.abort(run, reason) for run in list(self._live)))

    def recover(self) -> int:
        """End runs a previous service left unfinished; their output pipes died with it."""
        count = 0
        for row in self.store.unfinished():
            details = row.details
            attempt = model.current(details)
            pid, marker = self.store.process_of(row.name, details.id.name, attempt.attempt)
            message = RESTARTED
            if pid is not None and marker is not None and is_alive(pid, marker):
                signal_group(pid, signal.SIGKILL)
                message += "; its leftover process was stopped"
            path = self.layout.log_file(row.name, details.id.name, attempt.attempt)
            with LogWriter(path) as writer:
                writer.append(time.time_ns(), SYSTEM_LINE, message.encode())
            model.fail(details, model.SYSTEM, "ServiceRestarted", message, model.now_ns())
            self.store.save_action(details)
            count += 1
        return count

    # -- the attempt loop -----------------------------------------------------------------

    async def _run(self, live: LiveAction) -> None:
        details = live.details
        run = details.id.run.name
        meta = details.task.task_template.metadata
        retries = meta.retries.retries if meta.HasField("retries") else 0
        try:
            while True:
                outcome = await self._attempt(live)
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
            self._live.pop(run, None)
            live.done.set()

    async def _attempt(self, live: LiveAction) -> Outcome:
        details = live.details
        run, action = details.id.run.name, details.id.name
        number = model.current(details).attempt
        workdir = self.layout.attempt_dir(run, action, number)
        dirs = {n: workdir / n for n in ("work", "outputs", "raw", "checkpoint")}
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        previous = self.layout.attempt_dir(run, action, number - 1) / "checkpoint"
        with LogWriter(self.layout.log_file(run, action, number)) as writer:
            model.current(details).logs_available = True
            if live.abort_reason is None:
                model.advance(details, model.INITIALIZING, model.now_ns())
            self._save(details)
            container = details.task.task_template.container
            argv = render(
                [*container.command, *container.args],
                {
                    "Inputs": str(self.layout.inputs_file(run, action)),
                    "InputPrefix": str(self.layout.action_dir(run, action)),
                    "Outputs": str(dirs["outputs"]),
                    "OutputPrefix": str(dirs["outputs"]),
                    "rawOutputDataPrefix": str(dirs["raw"]),
                    "checkpointOutputPrefix": str(dirs["checkpoint"]),
                    "prevCheckpointPrefix": str(previous) if number > 1 else "",
                    "runName": run,
                    "actionName": action,
                },
            )
            outcome = await self._execute(live, argv, dirs, writer)
            self._finish(live, outcome, writer)
        return outcome

    async def _execute(
        self, live: LiveAction, argv: list[str], dirs: dict[str, Path], writer: LogWriter
    ) -> Outcome:
        details = live.details
        run, action = details.id.run.name, details.id.name
        number = model.current(details).attempt
        if live.abort_reason is not None:
            return failure(model.USER, "Aborted", live.abort_reason)
        if not argv:
            return failure(model.USER, "NoCommand", "the task's container has no command or args to run")
        # One log line, however many lines the command spans.
        note = "starting: " + shlex.join(_shorten(a) for a in argv).replace("\n", "\\n")
        writer.append(time.time_ns(), SYSTEM_LINE, note.encode())
        writer.flush()
        key = log_key(run, action, number)
        try:
            process = await TaskProcess.start(
                argv, dirs["work"], self._env(live), writer, lambda: self.hub.notify(key)
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            return failure(
                model.USER,
                "CommandNotFound" if isinstance(exc, FileNotFoundError) else "CommandNotStarted",
                f"could not start {argv[0]!r}: {reason}. Check the task's container command.",
            )
        live.process = process
        self.store.record_process(run, action, number, process.pid, start_marker(process.pid))
        if live.abort_reason is not None:  # the abort came while the process was starting
            self._stop_soon(process)
        else:
            model.advance(details, model.RUNNING, model.now_ns())
            self._save(details)
        timeout = details.task.task_template.metadata.timeout.ToTimedelta().total_seconds()
        code = await process.wait(timeout or None)
        timed_out = code is None
        if timed_out:
            await process.stop(self.grace)
            code = process.proc.returncode
        await process.finish()
        live.process = None
        writer.append(time.time_ns(), SYSTEM_LINE, f"exited with code {code}".encode())
        if live.abort_reason is not None:
            return failure(model.USER, "Aborted", live.abort_reason)
        if timed_out:
            outcome = failure(model.USER, "Timeout", f"the task ran longer than its timeout of {timeout:g} s")
            outcome.phase = model.TIMED_OUT
            return outcome
        return read_outcome(dirs["outputs"], int(code or 0), process.stderr_tail)  # type: ignore[arg-type]

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

    def _env(self, live: LiveAction) -> dict[str, str]:
        env = dict(os.environ)
        # Python block-buffers stdout into a pipe, which would hold logs back until exit.
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update({kv.key: kv.value for kv in live.run_spec.envs.values})
        env.update({kv.key: kv.value for kv in live.details.task.task_template.container.env})
        return env

    def _log_note(self, details: rd.ActionDetails, note: str) -> None:
        attempt = model.current(details).attempt
        path = self.layout.log_file(details.id.run.name, details.id.name, attempt)
        with LogWriter(path) as writer:
            writer.append(time.time_ns(), SYSTEM_LINE, note.encode())

    def _save(self, details: rd.ActionDetails, outputs: common_pb2.Outputs | None = None) -> None:
        run = details.id.run.name
        self.store.save_action(details, outputs)
        attempt = model.current(details).attempt
        self.hub.notify(run_key(run), ALL_RUNS, log_key(run, details.id.name, attempt))


def _shorten(arg: str, limit: int = 160) -> str:
    """Long arguments (a pickled function, say) would drown the first log line."""
    return arg if len(arg) <= limit else f"{arg[:60]}…({len(arg)} characters)"
