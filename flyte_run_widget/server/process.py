"""One task process, run under a small relay (``relay.py``) that owns its output and exit code,
so that the task, its log and its result all outlive a service killed with SIGKILL.

    proc = await TaskProcess.start(argv, cwd, env, files, on_lines, "started tasks.train, attempt 1")
    ended = await proc.wait(timeout=60)
    status = proc.status()            # exit code and last stderr lines, from the relay

A restarted service takes the same attempt back with ``TaskProcess.adopt(files, on_lines)``.
The relay leads the process group; stopping is SIGTERM to the group (the relay survives it to
record the task's end), then SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from flyteidl2.logs.dataplane import payload_pb2

from ..common.pids import pid_alive
from . import relay
from .relay import start_marker

USER_LINE = payload_pb2.USER
SYSTEM_LINE = payload_pb2.SYSTEM

_RELAY = str(Path(relay.__file__).resolve())
# How often an adopted attempt (no tick pipe) is checked for new lines and for its end.
_POLL_SECONDS = 0.1


def is_alive(pid: int, marker: str | None) -> bool:
    """True while ``pid`` runs and is the process we started (not a zombie, not a reuse)."""
    return pid_alive(pid) and (marker is None or start_marker(pid) == marker)


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@dataclass
class AttemptFiles:
    """Where an attempt's relay writes: the log, and its status (``.pid`` beside it)."""

    log: Path
    status: Path

    @property
    def pid_file(self) -> Path:
        return self.status.with_name(self.status.name + ".pid")

    def relay_pid(self) -> tuple[int | None, str | None]:
        try:
            info = json.loads(self.pid_file.read_text())
            return int(info["pid"]), (str(info["start"]) if info.get("start") is not None else None)
        except (OSError, ValueError, KeyError, TypeError):
            return None, None


@dataclass
class ExitStatus:
    """How the task ended, as the relay recorded it. ``code`` is None when it recorded nothing
    (the relay was killed: SIGKILL after the grace period, or from outside)."""

    code: int | None
    stderr_tail: list[bytes] = field(default_factory=list)
    start_error: str | None = None
    missing: bool = False


def _resolve(argv0: str, cwd: Path, env: dict[str, str]) -> None:
    """Raise the OSError that starting ``argv0`` would raise, before the relay starts."""
    if os.sep in argv0:
        path = cwd / argv0
        if not path.exists():
            raise FileNotFoundError(2, "No such file or directory", argv0)
        if not os.access(path, os.X_OK) or path.is_dir():
            raise PermissionError(13, "Permission denied", argv0)
    elif shutil.which(argv0, path=env.get("PATH", os.defpath)) is None:
        raise FileNotFoundError(2, "No such file or directory", argv0)


class TaskProcess:
    """A started (or adopted) relay and its task."""

    def __init__(
        self,
        pid: int,
        marker: str | None,
        files: AttemptFiles,
        on_lines: Callable[[], None],
        proc: asyncio.subprocess.Process | None = None,
    ) -> None:
        self.pid = pid
        self.marker = marker
        self.files = files
        self._on_lines = on_lines
        self.proc = proc
        self._ticks: asyncio.Task[None] | None = None
        if proc is not None and proc.stdout is not None:
            self._ticks = asyncio.create_task(self._read_ticks(proc.stdout))

    @property
    def adopted(self) -> bool:
        return self.proc is None

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        cwd: Path,
        env: dict[str, str],
        files: AttemptFiles,
        on_lines: Callable[[], None],
        started: str = "",
    ) -> TaskProcess:
        """Raises OSError when the executable cannot be started. ``started`` and the task's
        pid make the log's first line."""
        _resolve(argv[0], cwd, env)
        for stale in (files.status, files.pid_file):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        errors = files.status.with_name(files.status.name + ".err")
        with open(errors, "ab") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-S",  # the relay needs the standard library only; site costs ~5 ms per start
                _RELAY,
                str(files.log),
                str(files.status),
                *(("--started", started) if started else ()),
                "--",
                *argv,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                start_new_session=True,
            )
        return cls(proc.pid, start_marker(proc.pid), files, on_lines, proc)

    @classmethod
    def adopt(cls, files: AttemptFiles, on_lines: Callable[[], None]) -> TaskProcess | None:
        """The attempt's relay if it still runs (a previous service started it) or recorded
        how the task ended; None when neither (the attempt's result is lost)."""
        pid, marker = files.relay_pid()
        if pid is None or not (is_alive(pid, marker) or files.status.exists()):
            return None
        return cls(pid, marker, files, on_lines)

    async def _read_ticks(self, stream: asyncio.StreamReader) -> None:
        while await stream.read(64 * 1024):
            self._on_lines()

    def running(self) -> bool:
        if self.proc is not None:
            return self.proc.returncode is None
        return is_alive(self.pid, self.marker)

    async def wait(self, timeout: float | None = None) -> bool:
        """True once the relay has ended; False when ``timeout`` passed first."""
        if self.proc is not None:
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                return False
            return True
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        size = -1
        while True:
            with contextlib.suppress(OSError):
                now_size = self.files.log.stat().st_size
                if now_size != size:
                    size = now_size
                    self._on_lines()
            if not self.running():
                return True
            if deadline is not None and loop.time() >= deadline:
                return False
            await asyncio.sleep(_POLL_SECONDS)

    async def stop(self, grace: float) -> None:
        """SIGTERM to the whole group, SIGKILL to whatever is left after ``grace`` seconds."""
        signal_group(self.pid, signal.SIGTERM)
        if not await self.wait(grace):
            # The relay finds the task's processes that left the group, but the group's SIGKILL
            # ends the relay too: kill those first, from here.
            if is_alive(self.pid, self.marker):  # the pid is still our relay, not a reused one
                await asyncio.to_thread(relay.signal_escaped, self.pid, signal.SIGKILL)
            signal_group(self.pid, signal.SIGKILL)
            await self.wait()

    async def finish(self) -> None:
        """After the relay ended: end leftover children (as a container's end would), tell
        followers about the last lines."""
        signal_group(self.pid, signal.SIGKILL)
        if self._ticks is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ticks, 2.0)
        self._on_lines()

    def status(self) -> ExitStatus:
        try:
            info = json.loads(self.files.status.read_text())
        except (OSError, ValueError):
            info = None
        if not isinstance(info, dict):
            code = self.proc.returncode if self.proc is not None else None
            # A relay that recorded nothing died by a signal: report it as the task's end.
            return ExitStatus(code=code if code is not None and code < 0 else None)
        if "error" in info:
            return ExitStatus(code=127, start_error=str(info["error"]), missing=bool(info.get("missing")))
        tail = [str(s).encode() for s in info.get("stderr_tail", [])]
        return ExitStatus(code=int(info["code"]), stderr_tail=tail)
