"""Slowing down guessing: after a few failed attempts a key (a client id and address) must wait,
twice as long after each further failure, up to a cap. Memory is bounded: past ``max_keys`` the
keys least recently seen are forgotten.

    throttle = Throttle()
    if (wait := throttle.wait_left(key)) > 0: refuse, "retry in {wait:.0f} s"
    throttle.failed(key) / throttle.succeeded(key)
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable


class Throttle:
    def __init__(
        self,
        free: int = 5,
        base: float = 1.0,
        cap: float = 300.0,
        max_keys: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = free
        self.base = base
        self.cap = cap
        self.max_keys = max_keys
        self.clock = clock
        # key -> (failures, not before)
        self._seen: OrderedDict[Hashable, tuple[int, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def wait_left(self, key: Hashable) -> float:
        entry = self._seen.get(key)
        return 0.0 if entry is None else max(0.0, entry[1] - self.clock())

    def failed(self, key: Hashable) -> None:
        failures = self._seen.pop(key, (0, 0.0))[0] + 1
        delay = 0.0 if failures <= self.free else min(self.cap, self.base * 2 ** (failures - self.free - 1))
        self._seen[key] = (failures, self.clock() + delay)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)

    def succeeded(self, key: Hashable) -> None:
        self._seen.pop(key, None)
