"""Attempt log files: one binary record per line, appended while the task runs.

A record is a 13-byte header (timestamp in ns since the epoch, originator, length) and the
line's raw bytes, so invalid UTF-8 survives intact and reading back needs no parsing of text:

    with LogWriter(path) as w:
        w.append(time.time_ns(), USER, b"hello")
    batch = LogReader(path).read()
"""

from __future__ import annotations

import struct
from pathlib import Path
from types import TracebackType

_HEADER = struct.Struct("<qBI")
HEADER_SIZE = _HEADER.size

#: Longer lines are cut into pieces so that no single message comes near gRPC's 4 MiB limit.
MAX_LINE_BYTES = 256 * 1024

_READ_SIZE = 4 * 1024 * 1024

Record = tuple[int, int, bytes]  # (timestamp ns, originator, raw bytes without newline)


class LogWriter:
    """Appends records; callers flush after each chunk so that followers see lines promptly."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 - lives as long as the attempt
        self.lines = 0

    def append(self, ts_ns: int, originator: int, data: bytes) -> None:
        for start in range(0, max(len(data), 1), MAX_LINE_BYTES):
            piece = data[start : start + MAX_LINE_BYTES]
            self._file.write(_HEADER.pack(ts_ns, originator, len(piece)))
            self._file.write(piece)
            self.lines += 1

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class LogReader:
    """Reads records from an offset on; a record the writer has only half written is left
    for the next call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._pending = b""

    def read(self, max_bytes: int = _READ_SIZE) -> list[Record]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset + len(self._pending))
                chunk = f.read(max_bytes)
        except FileNotFoundError:
            return []
        if not chunk:
            return []
        data = self._pending + chunk
        records: list[Record] = []
        pos = 0
        end = len(data)
        unpack = _HEADER.unpack_from
        while pos + HEADER_SIZE <= end:
            ts, origin, length = unpack(data, pos)
            stop = pos + HEADER_SIZE + length
            if stop > end:
                break
            records.append((ts, origin, data[pos + HEADER_SIZE : stop]))
            pos = stop
        self.offset += pos
        self._pending = data[pos:]
        return records


def split_lines(buffer: bytes, data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (newline removed) in ``buffer + data`` and the unfinished rest."""
    buffer += data
    parts = buffer.split(b"\n")
    rest = parts.pop()
    if len(rest) > MAX_LINE_BYTES:
        # A stream that never ends its line must still reach the log.
        parts.append(rest)
        rest = b""
    return parts, rest
