"""A widget's log lines in the kernel: what each attempt holds for replay, and how lines are cut
into the custom messages the views receive.

    log = AttemptLog(capacity=100_000)
    log.add(to_columns(batch))
    first, lines = log.since(log.sent)
    for part in chunks(lines): ...     # each within MAX_BATCH_LINES and MAX_BATCH_CHARS
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterator
from itertools import accumulate

from ..remote.log_lines import Columns

# A message is one task in the browser's main thread (decode + append): ~5,000 lines or
# ~512 KB keeps each one far below 50 ms, and 1M lines still take only ~200 messages.
MAX_BATCH_LINES = 5_000
MAX_BATCH_CHARS = 512 * 1024


class AttemptLog:
    """One attempt's lines: the last ``capacity`` for replay, plus what the views lack.

    Lines are held as the column blocks they arrived in, so nothing is built per line."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.blocks: deque[Columns] = deque()
        self.held = 0  # lines in blocks
        self.total = 0  # lines seen; the first held line has index total - held
        self.sent = 0  # lines already pushed to the views
        self.done = False
        self.done_sent = False

    @property
    def first_held(self) -> int:
        return self.total - self.held

    def add(self, cols: Columns) -> None:
        n = len(cols)
        if not n:
            return
        self.blocks.append(cols)
        self.held += n
        self.total += n
        excess = self.held - self.capacity
        while excess > 0:
            first = self.blocks[0]
            if len(first) <= excess:
                self.blocks.popleft()
                self.held -= len(first)
                excess -= len(first)
            else:
                self.blocks[0] = first.slice(excess)
                self.held -= excess
                excess = 0

    def since(self, index: int) -> tuple[int, Columns]:
        """The held lines from ``index`` on (or from the first held one), as one block."""
        start = max(index, self.first_held)
        parts: list[Columns] = []
        pos = self.total  # index of the line after the block being looked at
        for block in reversed(self.blocks):
            if pos <= start:
                break
            pos -= len(block)
            parts.append(block.slice(start - pos) if pos < start else block)
        parts.reverse()
        return start, Columns.join(parts) if parts else Columns([], [], [])

    def tail(self, n: int) -> list[str]:
        """The last ``n`` texts. Safe from the kernel's main thread while the loop adds: it
        walks a copy of the block list (one C-level step) and reads no counters."""
        texts: list[str] = []
        for block in reversed(list(self.blocks)):
            need = n - len(texts)
            if need <= 0:
                break
            texts = block.texts[-need:] + texts
        return texts


def chunks(lines: Columns) -> Iterator[Columns]:
    """Split lines into messages bounded by line count and by characters (a line's text plus
    its 13 bytes of offset, timestamp and originator)."""
    n = len(lines)
    if n <= MAX_BATCH_LINES and sum(map(len, lines.texts)) + 13 * n <= MAX_BATCH_CHARS:
        if n:
            yield lines
        return
    ends = list(accumulate(map(len, lines.texts), initial=0))  # ends[i]: chars before line i
    start = 0
    while start < n:
        # the last stop with ends[stop] - ends[start] + 13 * (stop - start) within the budget
        limit = ends[start] + 13 * start + MAX_BATCH_CHARS
        stop = (
            bisect_right(
                range(n + 1),
                limit,
                lo=start,
                hi=min(n, start + MAX_BATCH_LINES) + 1,
                key=lambda i: ends[i] + 13 * i,
            )
            - 1
        )
        stop = max(stop, start + 1)  # a line longer than the budget travels alone
        yield lines.slice(start, stop)
        start = stop
