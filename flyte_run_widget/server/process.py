"""One task process: started in its own process group, its stdout and stderr streamed into
the attempt log line by line, stopped as a group (SIGTERM, then SIGKILL after a grace period).

    proc = await TaskProcess.start(argv, cwd, env, log, on_lines)
    code = await proc.wait(timeout=60)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from flyteidl2.logs.dataplane import payload_pb2

from .logfile import LogWriter, split_lines

USER_LINE = payload_pb2.USER
SYSTEM_LINE = payload_pb2.SYSTEM

_CHUNK = 64 * 1024
# After the main process exits, how long its pipes may take to drain; a child that escaped
# the group and still holds them open must not keep the attempt from finishing.
_DRAIN_SECONDS = 2.0


def start_marker(pid: int) -> str | None:
    """Something that tells this process apart from a later one with the same pid (Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (start time); the command name in field 2 may contain spaces, so split after it.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def is_alive(pid: int, marker: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return marker is None or start_marker(pid) == marker


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class TaskProcess:
    """A started task process and the pumps copying its output into the log."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        log: LogWriter,
        on_lines: Callable[[], None],
    ) -> None:
        self.proc = proc
        self.pid = proc.pid
        self._log = log
        self._on_lines = on_lines
        self.stderr_tail: deque[bytes] = deque(maxlen=20)
        assert proc.stdout is not None and proc.stderr is not None
        self._pumps = [
            asyncio.create_task(self._pump(proc.stdout, None)),
            asyncio.create_task(self._pump(proc.stderr, self.stderr_tail)),
        ]

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        cwd: Path,
        env: dict[str, str],
        log: LogWriter,
        on_lines: Callable[[], None],
    ) -> TaskProcess:
        """Raises OSError when the executable cannot be started."""
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            limit=_CHUNK,
        )
        return cls(proc, log, on_lines)

    async def _pump(self, stream: asyncio.StreamReader, tail: deque[bytes] | None) -> None:
        rest = b""
        while True:
            chunk = await stream.read(_CHUNK)
            if not chunk:
                break
            lines, rest = split_lines(rest, chunk)
            if lines:
                self._write(lines, tail)
        if rest:
            # A last line without a newline is still a line.
            self._write([rest], tail)

    def _write(self, lines: list[bytes], tail: deque[bytes] | None) -> None:
        ts = time.time_ns()
        append = self._log.append
        for line in lines:
            append(ts, USER_LINE, line)
        if tail is not None:
            tail.extend(lines[-20:])
        self._log.flush()
        self._on_lines()

    async def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or None when ``timeout`` passed first (the process still runs)."""
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            return None

    async def stop(self, grace: float) -> None:
        """SIGTERM to the whole group, SIGKILL to whatever is left after ``grace`` seconds."""
        signal_group(self.pid, signal.SIGTERM)
        if await self.wait(grace) is None:
            signal_group(self.pid, signal.SIGKILL)
            await self.proc.wait()

    async def finish(self) -> None:
        """After the main process exited: end its leftover children (as a container's end
        would) and let the pumps copy what is still in the pipes."""
        signal_group(self.pid, signal.SIGKILL)
        _, pending = await asyncio.wait(self._pumps, timeout=_DRAIN_SECONDS)
        for task in pending:
            task.cancel()
        for task in self._pumps:
            with contextlib.suppress(asyncio.CancelledError):
                await task
