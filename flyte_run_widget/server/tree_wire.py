"""WatchActions responses written as bytes from the stored action summaries (serialised
``Action`` messages), without parsing or building a protobuf message per action: a snapshot of
10,000 actions is then a few joins instead of 10,000 parses, copies and serialisations.

    body = enriched_bytes(summary, meets_filter=True, counts={RUNNING: 3})
    yield response_bytes([body, ...])      # a serialised WatchActionsResponse

The layout (protobuf wire format, fields of flyteidl2.workflow):
    EnrichedAction        1: action (message)  2: meets_filter (bool)  3: children_phase_counts
                          (map<int32, int32>: entries of 1: key, 2: value)
    WatchActionsResponse  1: enriched_actions (repeated EnrichedAction)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .log_files import _len as _varint
from .log_files import varint

_ACTION = b"\x0a"  # field 1, length-delimited
_MEETS = b"\x10\x01"  # field 2, varint 1 (false is the default: not written)
_COUNT = b"\x1a"  # field 3, length-delimited map entry
_KEY, _VALUE = b"\x08", b"\x10"
_ENRICHED = b"\x0a"  # WatchActionsResponse field 1

_COUNTS_CACHE: dict[tuple[tuple[int, int], ...], bytes] = {}


def _counts_bytes(counts: Mapping[int, int]) -> bytes:
    key = tuple(sorted(counts.items()))
    out = _COUNTS_CACHE.get(key)
    if out is None:
        parts = []
        for phase, count in key:
            entry = _KEY + varint(phase) + _VALUE + varint(count)
            parts.append(_COUNT + varint(len(entry)) + entry)
        out = b"".join(parts)
        if len(_COUNTS_CACHE) < 4096:  # parents' counts repeat (few phases, many parents alike)
            _COUNTS_CACHE[key] = out
    return out


def enriched_bytes(summary: bytes, meets_filter: bool, counts: Mapping[int, int] | None = None) -> bytes:
    """A serialised EnrichedAction around ``summary`` (a serialised Action)."""
    head = _ACTION + _varint(len(summary))
    tail = _MEETS if meets_filter else b""
    if counts:
        tail += _counts_bytes(counts)
    return head + summary + tail


def response_bytes(enriched: Sequence[bytes]) -> bytes:
    """A serialised WatchActionsResponse holding ``enriched`` (serialised EnrichedActions)."""
    return b"".join(_ENRICHED + _varint(len(e)) + e for e in enriched)
