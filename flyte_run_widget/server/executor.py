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
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flyteidl2.task import common_pb2, run_pb2
from flyteidl2.workflow import run_definition_pb2 as rd

from . import model
from .hub import ALL_RUNS, Hub, log_key, run_key
from .log_files import LogReader, LogWriter
from .paths import Layout
from .process import SYSTEM_LINE, AttemptFiles, TaskProcess, is_alive, signal_group
from .results import Outcome, failure, read_outcome
from .sdk_tasks import FlyteCheck, FlytePython, is_flyte_runtime, runtime_argv, runtime_env
from .store import RunRow, Store
from .templates import render

log = logging.getLogger(__name__)

RESTARTED = "the service restarted while this run was running"


@dataclass
class SdkSettings:
    """What tasks written with the flyte SDK need from this service: the Python that runs
    them, and where they call back (sub-tasks)."""

    python: FlytePython
    endpoint: str
    insecure: bool = True

    def __post_init__(self) -> None:
        self.check = FlyteCheck(self.python)


@dataclass
class LiveAction:
    details: rd.ActionDetails
    run_spec: run_pb2.RunSpec
    abort_reason: str | None = None
    process: TaskProcess | None = None
    note: str | None = None  # a SYSTEM line to add once the adopted attempt's relay ended
    done: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


# What a task inherits from the service: where programs, libraries and home are, and how to
# speak. Nothing else, so secrets in the service's environment (cloud credentials, the
# notebook's API key) stay out of tasks; a task says what else it needs (Task(env=...)).
_INHERITED = frozenset(
    [
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "TERM",
        "COLORTERM",
        "NO_COLOR",
        "FORCE_COLOR",
        "TZ",
        "TMPDIR",
        "LANG",
        "LANGUAGE",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        "LD_LIBRARY_PATH",
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_RUNTIME_DIR",
    ]
)


def inherited_env(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k in _INHERITED or k.startswith("LC_")}


class Executor:
    """``max_running`` > 0 caps the runs whose tasks run at once: the others wait QUEUED, in
    the order they came, until one ends (or they are aborted, never having started)."""

    def __init__(
        self,
        layout: Layout,
        store: Store,
        hub: Hub,
        grace: float = 5.0,
        max_running: int = 0,
        sdk: SdkSettings | None = None,
    ) -> None:
        self.sdk = sdk
        self.layout = layout
        self.store = store
        self.hub = hub
        self.grace = grace
        self.max_running = max_running
        self._live: dict[str, LiveAction] = {}
        self._stoppers: set[asyncio.Task[None]] = set()
        self._holding = 0  # runs holding one of the max_running slots
        self._slot_freed = asyncio.Event()

    # -- public ---------------------------------------------------------------------------

    def start(self, details: rd.ActionDetails, run_spec: run_pb2.RunSpec, inputs: bytes) -> None:
        run = details.id.run.name
        inputs_file = self.layout.inputs_file(run, details.id.name)
        inputs_file.parent.mkdir(parents=True, exist_ok=True)
        inputs_file.write_bytes(inputs)
        live = LiveAction(details=details, run_spec=run_spec)
        self._live[run] = live
        live.task = asyncio.create_task(self._run(live), name=f"run {run}")

    async def abort(self, run: str, reason: str) -> bool:
        """Stop a running action; False when it is not running in this service."""
        live = self._live.get(run)
        if live is None:
            return False
        if live.abort_reason is None:
            live.abort_reason = reason or "aborted"
            if live.process is not None:
                self._stop_soon(live.process)
            self._wake_queued()  # a run waiting for a slot ends without starting
        # Answer once the abort is recorded, so the caller's next read shows ABORTED.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(live.done.wait(), self.grace + 10)
        return True

    async def shutdown(self, reason: str) -> None:
        await asyncio.gather(*(self.abort(run, reason) for run in list(self._live)))

    def recover(self) -> int:
        """Take back runs a previous service left unfinished: an attempt whose relay still
        runs (or that ended while no service was there) is adopted and followed to its end;
        any other run ends FAILED, saying the service restarted. Returns the runs ended."""
        count = 0
        for row in self.store.unfinished():
            details = row.details
            run, action = row.name, details.id.name
            attempt = model.current(details)
            files = self._files(run, action, attempt.attempt)
            process = TaskProcess.adopt(files, self._notifier(log_key(run, action, attempt.attempt)))
            if process is not None:
                self._adopt(row, process)
                continue
            pid, marker = self.store.process_of(run, action, attempt.attempt)
            relay_pid, relay_marker = files.relay_pid()
            message = RESTARTED
            leftovers = [(p, m) for p, m in ((pid, marker), (relay_pid, relay_marker)) if p is not None]
            # The group outlives its leader: signal it whether or not the leader is still there.
            if any(is_alive(p, m) for p, m in leftovers):
                message += "; its leftover process was stopped"
            for p, _ in leftovers:
                signal_group(p, signal.SIGKILL)
            with LogWriter(self.layout.log_file(run, action, attempt.attempt)) as writer:
                writer.append(time.time_ns(), SYSTEM_LINE, message.encode())
            model.fail(details, model.SYSTEM, "ServiceRestarted", message, model.now_ns())
            self.store.save_action(details)
            count += 1
        return count

    def _adopt(self, row: RunRow, process: TaskProcess) -> None:
        details = row.details
        pid = process.pid
        # Noted once the relay has ended: while it runs it is the log's only writer.
        note = (
            f"the service restarted while the task ran; it was followed again (relay pid {pid})"
            if process.running()
            else "the service restarted; the task had ended while it was down"
        )
        live = LiveAction(details=details, run_spec=row.run_spec, process=process, note=note)
        self._live[row.name] = live
        live.task = asyncio.create_task(self._run(live, process), name=f"run {row.name} (adopted)")
        log.warning("adopted run %s (relay pid %d)", row.name, pid)

    # -- the attempt loop -----------------------------------------------------------------

    async def _run(self, live: LiveAction, adopted: TaskProcess | None = None) -> None:
        details = live.details
        run = details.id.run.name
        meta = details.task.task_template.metadata
        retries = meta.retries.retries if meta.HasField("retries") else 0
        holds_slot = False
        try:
            # An adopted task runs already: it takes its slot without waiting.
            holds_slot = await self._take_slot(live, wait=adopted is None)
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
            self._live.pop(run, None)
            live.done.set()

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
        container = details.task.task_template.container
        values = {
            "Inputs": str(self.layout.inputs_file(run, action)),
            "input": str(self.layout.inputs_file(run, action)),
            "InputPrefix": str(self.layout.action_dir(run, action)),
            "Outputs": str(dirs["outputs"]),
            "OutputPrefix": str(dirs["outputs"]),
            "rawOutputDataPrefix": str(dirs["raw"]),
            "checkpointOutputPrefix": str(dirs["checkpoint"]),
            "prevCheckpointPrefix": str(previous) if number > 1 else "",
            "runName": run,
            "actionName": action,
            "runStartTime": details.status.start_time.ToDatetime().isoformat() + "Z",
        }
        if is_flyte_runtime(container) and self.sdk is not None:
            argv = runtime_argv(self.sdk.python, render(container.args, values))
        else:
            argv = render([*container.command, *container.args], values)
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
        # One log line, however many lines the command spans. Written (and the file closed)
        # before the relay starts: while it runs, only the relay appends task lines.
        note = "starting: " + shlex.join(_shorten(a) for a in argv).replace("\n", "\\n")
        self._log_note(details, note)
        try:
            process = await TaskProcess.start(
                argv,
                dirs["work"],
                self._env(live),
                self._files(run, action, number),
                self._notifier(log_key(run, action, number)),
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
            _trim_partial_record(process.files.log)  # the relay was killed mid-write, perhaps
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

    def _notifier(self, key: Hashable) -> Callable[[], None]:
        return lambda: self.hub.notify(key)

    def _files(self, run: str, action: str, number: int) -> AttemptFiles:
        status = self.layout.attempt_dir(run, action, number) / "status.json"
        return AttemptFiles(log=self.layout.log_file(run, action, number), status=status)

    def _env(self, live: LiveAction) -> dict[str, str]:
        env = inherited_env(os.environ)
        # Python block-buffers stdout into a pipe, which would hold logs back until exit.
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update({kv.key: kv.value for kv in live.run_spec.envs.values})
        container = live.details.task.task_template.container
        env.update({kv.key: kv.value for kv in container.env})
        if is_flyte_runtime(container) and self.sdk is not None:
            rid = live.details.id.run
            env.update(
                runtime_env(
                    python=self.sdk.python,
                    endpoint=self.sdk.endpoint,
                    insecure=self.sdk.insecure,
                    org=rid.org,
                    project=rid.project,
                    domain=rid.domain,
                    run_base=str(self.layout.run_base(rid.name)),
                    run=rid.name,
                    action=live.details.id.name,
                    attempt=model.current(live.details).attempt,
                    path=env.get("PATH", os.defpath),
                )
            )
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


def _trim_partial_record(path: Path) -> None:
    """Cut a record a killed writer left half written, so that the next one appends cleanly."""
    reader = LogReader(path)
    while reader.read():
        pass
    with contextlib.suppress(OSError), open(path, "r+b") as f:
        if f.seek(0, os.SEEK_END) > reader.offset:
            f.truncate(reader.offset)


def _shorten(arg: str, limit: int = 160) -> str:
    """Long arguments (a pickled function, say) would drown the first log line."""
    return arg if len(arg) <= limit else f"{arg[:60]}…({len(arg)} characters)"
