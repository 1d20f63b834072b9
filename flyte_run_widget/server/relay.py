"""The per-attempt relay: the task's parent, so that the task outlives the service. It runs as a
process of its own, one per attempt, started by path (process.py), not as part of the package:

    python -I -S relay.py LOG STATUS [--started TEXT] -- ARGV...

It starts ARGV in its own process group (the relay leads it), writes TEXT and the task's pid
as the log's first line (``started tasks.train, attempt 1, pid 4242``), copies the task's stdout and
stderr into the attempt log LOG (with ``log_files.py``'s LogWriter), writes one byte to
its own stdout after each batch so that a live service knows new lines are there, and when the
task ends writes STATUS (JSON: exit code, last stderr lines) and kills what is left of the group.

A service killed with SIGKILL leaves the relay running: the log keeps growing, STATUS still
appears, and a restarted service adopts the attempt by the relay's pid (``STATUS.pid`` holds
it and its start time). SIGTERM to the group reaches the task; the relay itself survives it
to record the exit code. Run by path, importing only ``log_files.py``: it starts fast.

On Linux the relay is a child subreaper: a task's process that leaves the group (``setsid``,
a daemonising double fork) is still the relay's descendant, gets SIGTERM with the task and is
killed when the attempt ends.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import os
import selectors
import signal
import subprocess
import sys
import time

TYPE_CHECKING = False  # typing itself costs ~3 ms at every relay start

if TYPE_CHECKING:
    from typing import Any

_CHUNK = 64 * 1024
_TAIL = 20
USER = 1  # payload_pb2.USER
SYSTEM = 2  # payload_pb2.SYSTEM


def _load_logfile() -> Any:
    """``log_files.py`` beside this file, without importing the package (and gRPC) for it."""
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("_frw_logfile", os.path.join(here, "log_files.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_marker(pid: int) -> str | None:
    """Something that tells this process apart from a later one with the same pid (Linux): its
    start time, which the relay records beside STATUS and the service compares on adoption."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # Field 22; the command name in field 2 may contain spaces, so split after it.
            fields = f.read().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return fields[19] if len(fields) > 19 else None


_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _escape(c: str) -> str:
    if c in _SHORT:
        return _SHORT[c]
    code = ord(c)
    if code > 0xFFFF:  # as json.dumps does: a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def _json(value: object) -> str:
    """ASCII JSON, as ``json.dumps`` writes it, for the few shapes the relay writes (the json
    module would add ~7 ms to every start)."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + "".join(c if " " <= c < "\x7f" and c not in '"\\' else _escape(c) for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(map(_json, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_json(str(k))}: {_json(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _write_json(path: str, value: object) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(_json(value))
    os.replace(tmp, path)


class _Relay:
    def __init__(self, log_path: str) -> None:
        # While the relay runs it is the log's only writer (the service writes before and after).
        logfile = _load_logfile()
        self.log = logfile.LogWriter(log_path)
        self.max_line = int(logfile.MAX_LINE_BYTES)
        self.cut_at = logfile.cut_at
        self.tail: collections.deque[bytes] = collections.deque(maxlen=_TAIL)
        self.rest: dict[int, bytes] = {}
        self.notify = True

    def lines(self, fd: int, chunk: bytes, is_stderr: bool) -> None:
        data = self.rest.get(fd, b"") + chunk
        parts = data.split(b"\n")
        rest = parts.pop()
        begun: list[bytes] = []
        while len(rest) > self.max_line:  # no end in sight: write it in pieces that say so
            cut = self.cut_at(rest, self.max_line)
            begun.append(rest[:cut])
            rest = rest[cut:]
        self.rest[fd] = rest
        self.emit(parts, is_stderr, begun)

    def system(self, text: str) -> None:
        self.log.append(time.time_ns(), SYSTEM, text.encode("utf-8", "replace"))
        self.log.flush()
        self.tick()

    def emit(self, parts: list[bytes], is_stderr: bool, begun: list[bytes] | None = None) -> None:
        if not parts and not begun:
            return
        now = time.time_ns()
        if parts:
            self.log.append_lines(now, USER, parts)
        for piece in begun or ():
            self.log.append(now, USER, piece, False)
        self.log.flush()
        if is_stderr:
            self.tail.extend(parts[-_TAIL:])
        self.tick()

    def tick(self) -> None:
        if self.notify:
            try:
                os.write(1, b".")
            except BlockingIOError:
                pass  # the pipe is full of unread ticks: the service wakes up anyway
            except OSError:
                self.notify = False  # the service is gone: a new one watches the log file


def _become_subreaper() -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_child_subreaper = 36
    # Without it, processes that left the group may outlive the attempt.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def descendants_elsewhere(root: int) -> list[int]:
    """Pids of ``root``'s descendants outside its process group (they escaped killpg)."""
    try:
        group = os.getpgid(root)
    except ProcessLookupError:
        return []
    if group != root:  # a relay leads its own group; anything else is not one of ours
        return []
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children[int(fields[1])].append(int(entry.name))  # fields: state, ppid, pgrp, ...
    out = []
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(pid) != group:
                out.append(pid)
    return out


def signal_escaped(root: int, sig: int) -> None:
    """Signal ``root``'s descendants that left its group (the relay's, or from the service)."""
    if not os.path.isdir("/proc"):
        return
    for pid in descendants_elsewhere(root):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def main(argv: list[str]) -> int:
    log_path, status_path, options = argv[0], argv[1], argv[2:]
    started = None
    if options[:1] == ["--started"]:
        started, options = options[1], options[2:]
    command = options[1:] if options[:1] == ["--"] else options
    me = os.getpid()
    _write_json(status_path + ".pid", {"pid": me, "start": start_marker(me)})
    stop_requested = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True  # the task gets the same signal (same group); we record its end
        signal_escaped(me, signum)  # and so do its processes that left the group

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    _become_subreaper()
    relay = _Relay(log_path)
    os.set_blocking(1, False)
    with os.fdopen(os.open(os.devnull, os.O_RDONLY)) as devnull:
        try:
            proc = subprocess.Popen(command, stdin=devnull, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            error = exc.strerror or str(exc)
            _write_json(status_path, {"error": error, "missing": isinstance(exc, FileNotFoundError)})
            return 127
    if started:
        # Before any of the task's lines: the relay is the log's only writer from here on.
        relay.system(f"{started}, pid {proc.pid}")
    assert proc.stdout is not None and proc.stderr is not None
    streams = {proc.stdout.fileno(): False, proc.stderr.fileno(): True}
    sel = selectors.DefaultSelector()
    for fd in streams:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    open_fds = set(streams)
    code: int | None = None
    while open_fds:
        for key, _ in sel.select(timeout=0.2):
            fd = int(key.fd)
            try:
                chunk = os.read(fd, _CHUNK)
            except BlockingIOError:
                continue
            if chunk:
                relay.lines(fd, chunk, streams[fd])
            else:
                sel.unregister(fd)
                open_fds.discard(fd)
        if code is None:
            code = proc.poll()
        if code is not None:
            # The task is gone: take what is in its pipes now; children that kept them open
            # must not hold the attempt (they are killed below, as a container's end would).
            for fd in list(open_fds):
                while True:
                    try:
                        chunk = os.read(fd, _CHUNK)
                    except BlockingIOError:
                        break
                    if not chunk:
                        break
                    relay.lines(fd, chunk, streams[fd])
            break
    if code is None:
        code = proc.wait()
    for fd, is_stderr in streams.items():
        rest = relay.rest.pop(fd, b"")
        if rest:
            relay.emit([rest], is_stderr)
    tail = [line.decode("utf-8", "replace") for line in relay.tail]
    _write_json(status_path, {"code": code, "stderr_tail": tail, "term": stop_requested})
    relay.log.close()
    # Leftover children of the task die with the group; so does this relay.
    signal_escaped(me, signal.SIGKILL)
    os.killpg(0, signal.SIGKILL)
    return code  # pragma: no cover - not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
