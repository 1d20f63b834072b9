"""Attempt log files: one record per line, appended while the task runs.

Each record is the line already encoded as protobuf: one element of the repeated field
``TailLogsResponse.Logs.lines`` (tag, length, ``LogLine{timestamp, message + "\\n",
originator}``). Serving a log is then slicing the file: a run of records *is* the body of a
``Logs`` message, with no per-line work at serve time. A line that is not valid UTF-8 (a proto3
string must be) is kept as a raw record instead (``\\x01``, a 13-byte header, the bytes) and
encoded with replacement characters when it is served, so its bytes survive intact:

    with LogWriter(path) as w:
        w.append(time.time_ns(), USER, b"hello")
    records = LogReader(path).read()          # [(ts_ns, originator, b"hello")]
    bodies = LogReader(path).read_encoded()   # [b"\\n\\x1b\\n\\x0c\\x08...hello\\n\\x18\\x01"]

A line longer than ``MAX_LINE_BYTES`` is written as several records; all but its last have no
newline at the end of their message: the line goes on in the next record.

Files start with ``MAGIC``; a file written by an older version (bare 13-byte headers) is
still read, and appended to, in that older form.
"""

from __future__ import annotations

import contextlib
import os
import struct

TYPE_CHECKING = False  # typing itself costs ~3 ms at every relay start

if TYPE_CHECKING:  # not at run time: relay.py loads this file and starts with every attempt
    from pathlib import Path
    from types import TracebackType

_HEADER = struct.Struct("<qBI")
HEADER_SIZE = _HEADER.size

#: Longer lines are cut into pieces so that no single message comes near gRPC's 4 MiB limit.
MAX_LINE_BYTES = 256 * 1024


def cut_at(data: bytes, limit: int) -> int:
    """Where to cut ``data`` (longer than ``limit``) so that the first piece has at most
    ``limit`` bytes and no UTF-8 character is split (bytes that are not UTF-8 are cut anywhere)."""
    for cut in range(limit, limit - 4, -1):
        if not 0x80 <= data[cut] < 0xC0:  # not a continuation byte: a character starts here
            return cut
    return limit


#: The first bytes of a file in the encoded form (as a legacy header it would be a 1992 date).
MAGIC = b"\x00FRWLG2\n"

_READ_SIZE = 4 * 1024 * 1024
_LINE_TAG = 0x0A  # field 1 (lines), length-delimited
_RAW_TAG = 0x01  # not a protobuf tag: a raw record, encoded when served

Record = tuple[int, int, bytes]  # (timestamp ns, originator, raw bytes without newline)


def varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL_VARINTS = [varint(n) for n in range(1 << 14)]


def _len(n: int) -> bytes:
    return _SMALL_VARINTS[n] if n < 16384 else varint(n)


def _timestamp_field(ts_ns: int) -> bytes:
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    body = (b"\x08" + varint(seconds) if seconds else b"") + (b"\x10" + varint(nanos) if nanos else b"")
    return b"\x0a" + _len(len(body)) + body


_ORIGIN_FIELDS = [b""] + [b"\x18" + bytes([o]) for o in range(1, 128)]


def encode_line(ts_ns: int, originator: int, text: str) -> bytes:
    """One ``Logs.lines`` element: a ``LogLine`` with ``text`` + newline as its message."""
    msg = text.encode() + b"\n"
    body = _timestamp_field(ts_ns) + b"\x12" + _len(len(msg)) + msg + _ORIGIN_FIELDS[originator]
    return b"\x0a" + _len(len(body)) + body


class LogWriter:
    """Appends records; callers flush after each chunk so that followers see lines promptly."""

    def __init__(self, path: Path | str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 - lives as long as the attempt
        self.lines = 0
        self._legacy = False
        if self._file.tell() == 0:
            self._file.write(MAGIC)
        else:
            with open(path, "rb") as f:
                self._legacy = f.read(len(MAGIC)) != MAGIC
        self._ts_ns = -1
        self._ts_field = b""

    def append(self, ts_ns: int, originator: int, data: bytes, ends_line: bool = True) -> None:
        """One line, or with ``ends_line=False`` the start of one that goes on in the next
        append (its record has no newline)."""
        write = self._file.write
        if ts_ns != self._ts_ns:
            self._ts_ns, self._ts_field = ts_ns, _timestamp_field(ts_ns)
        origin = _ORIGIN_FIELDS[originator]
        while True:
            cut = cut_at(data, MAX_LINE_BYTES) if len(data) > MAX_LINE_BYTES else len(data)
            piece, data = data[:cut], data[cut:]
            newline = 1 if ends_line and not data else 0
            self.lines += 1
            if self._legacy:
                write(_HEADER.pack(ts_ns, originator, len(piece)) + piece)
            elif piece.isascii() or _is_utf8(piece):
                write(b"".join((self._prefix(len(piece), origin, newline), piece, b"\n"[:newline], origin)))
            else:  # kept as bytes, served with replacement characters (and a newline)
                write(b"\x01" + _HEADER.pack(ts_ns, originator, len(piece)) + piece)
            if not data:
                return

    def append_lines(self, ts_ns: int, originator: int, lines: list[bytes]) -> None:
        """Lines that share a timestamp and an originator (one chunk a task printed): the same
        records as :meth:`append` for each, built with a per-length prefix instead of per line."""
        if self._legacy or not all(map(bytes.isascii, lines)) or max(map(len, lines), default=0) >= 16000:
            for line in lines:  # the general path: UTF-8 checks, long lines cut into pieces
                self.append(ts_ns, originator, line)
            return
        if ts_ns != self._ts_ns:
            self._ts_ns, self._ts_field = ts_ns, _timestamp_field(ts_ns)
        origin = _ORIGIN_FIELDS[originator]
        tail = b"\n" + origin
        prefixes: dict[int, bytes] = {}
        out: list[bytes] = []
        add = out.extend
        for line in lines:
            n = len(line)
            prefix = prefixes.get(n)
            if prefix is None:
                prefix = prefixes[n] = self._prefix(n, origin)
            add((prefix, line, tail))
        self._file.write(b"".join(out))
        self.lines += len(lines)

    def _prefix(self, n: int, origin: bytes, newline: int = 1) -> bytes:
        """A record up to its text of ``n`` bytes, which ``b"\\n" + origin`` then ends (``origin``
        alone when ``newline`` is 0): the element's tag and length, the timestamp, the
        message's tag and length."""
        size = _len(n + newline)
        body = len(self._ts_field) + 1 + len(size) + n + newline + len(origin)
        return b"\x0a" + _len(body) + self._ts_field + b"\x12" + size

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


def _varint_at(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """(value, position after it); position > end when the varint is cut off."""
    value = shift = 0
    while pos < end:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
    return 0, end + 1


class LogReader:
    """Reads records from an offset on; a record the writer has only half written is left
    for the next call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._legacy: bool | None = None

    def _chunk(self, max_bytes: int) -> bytes:
        try:
            with open(self.path, "rb") as f:
                if self._legacy is None:
                    head = f.read(len(MAGIC))
                    if len(head) < len(MAGIC) and MAGIC.startswith(head):
                        return b""  # too early to tell
                    self._legacy = head != MAGIC
                    self.offset = 0 if self._legacy else len(MAGIC)
                f.seek(self.offset)
                return f.read(max_bytes)
        except FileNotFoundError:
            return b""

    def read_encoded(self, max_bytes: int = _READ_SIZE, part_bytes: int = 2 * 1024 * 1024) -> list[bytes]:
        """The complete records from the offset on as ``Logs`` message bodies (concatenated
        ``lines`` elements), each about ``part_bytes`` or less (one long line may exceed it)."""
        data = self._chunk(max_bytes)
        if not data:
            return []
        if self._legacy:
            return self._legacy_encoded(data, part_bytes)
        parts: list[bytes] = []
        segments: list[bytes] = []  # of the body being built, before data[start:pos]
        done = 0  # bytes in segments
        pos = start = 0
        end = len(data)
        while pos < end:
            tag = data[pos]
            if tag == _LINE_TAG:
                if pos + 1 >= end:
                    break
                n = data[pos + 1]
                if n < 0x80:
                    stop = pos + 2 + n
                else:
                    n, body = _varint_at(data, pos + 1, end)
                    stop = body + n
                if stop > end:
                    break
            elif tag == _RAW_TAG:
                if pos + 1 + HEADER_SIZE > end:
                    break
                ts, origin, length = _HEADER.unpack_from(data, pos + 1)
                stop = pos + 1 + HEADER_SIZE + length
                if stop > end:
                    break
            else:
                raise ValueError(f"{self.path}: not a log record at offset {self.offset + pos}")
            if done + stop - start > part_bytes and (done or pos > start):
                parts.append(b"".join([*segments, data[start:pos]]))
                segments, done, start = [], 0, pos
            if tag == _RAW_TAG:
                segments.append(data[start:pos])
                text = data[pos + 1 + HEADER_SIZE : stop].decode(errors="replace")
                segments.append(encode_line(ts, origin, text))
                done += pos - start + len(segments[-1])
                start = stop
            pos = stop
        if done or pos > start:
            parts.append(b"".join([*segments, data[start:pos]]) if segments else data[start:pos])
        self.offset += pos
        return parts

    def read(self, max_bytes: int = _READ_SIZE) -> list[Record]:
        """The complete records from the offset on, as (timestamp ns, originator, bytes)."""
        data = self._chunk(max_bytes)
        if not data:
            return []
        if self._legacy:
            return self._legacy_records(data)
        from flyteidl2.logs.dataplane import payload_pb2  # not at import: relay.py loads this file

        records: list[Record] = []
        end = len(data)
        pos = 0
        while pos < end:
            if data[pos] == _RAW_TAG:
                if pos + 1 + HEADER_SIZE > end:
                    break
                ts, origin, length = _HEADER.unpack_from(data, pos + 1)
                stop = pos + 1 + HEADER_SIZE + length
                if stop > end:
                    break
                records.append((ts, origin, data[pos + 1 + HEADER_SIZE : stop]))
            elif data[pos] == _LINE_TAG:
                n, body = _varint_at(data, pos + 1, end)
                stop = body + n
                if stop > end:
                    break
                line = payload_pb2.LogLine.FromString(data[body:stop])
                text = line.message.encode()
                records.append((line.timestamp.ToNanoseconds(), line.originator, text.removesuffix(b"\n")))
            else:
                raise ValueError(f"{self.path}: not a log record at offset {self.offset + pos}")
            pos = stop
        self.offset += pos
        return records

    def _legacy_encoded(self, data: bytes, part_bytes: int) -> list[bytes]:
        parts: list[bytes] = []
        current: list[bytes] = []
        size = 0
        for ts, origin, raw in self._legacy_records(data):
            line = encode_line(ts, origin, raw.decode(errors="replace"))
            if size + len(line) > part_bytes and current:
                parts.append(b"".join(current))
                current, size = [], 0
            current.append(line)
            size += len(line)
        if current:
            parts.append(b"".join(current))
        return parts

    def _legacy_records(self, data: bytes) -> list[Record]:
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
        return records


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def trim_partial_record(path: Path) -> None:
    """Cut a record a killed writer left half written, so that the next one appends cleanly."""
    reader = LogReader(path)
    while reader.read():
        pass
    with contextlib.suppress(OSError), open(path, "r+b") as f:
        if f.seek(0, os.SEEK_END) > reader.offset:
            f.truncate(reader.offset)
