"""Services outlive a test process that is stopped by a signal (mutmut ends a mutant's test run
with SIGXCPU on its time limit), because fixture teardown never runs. ``stopped_on_sigxcpu``
kills them first, then lets the signal end the process as before.

    with stopped_on_sigxcpu(service):
        yield service
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any, Protocol


class Killable(Protocol):
    def kill(self) -> None: ...


@contextlib.contextmanager
def stopped_on_sigxcpu(*services: Killable) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # handlers: main thread only
        yield
        return
    previous = signal.getsignal(signal.SIGXCPU)

    def handler(signum: int, frame: Any) -> None:
        for service in services:
            service.kill()
        if callable(previous):
            previous(signum, frame)
        else:
            signal.signal(signal.SIGXCPU, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGXCPU)

    signal.signal(signal.SIGXCPU, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGXCPU, previous)
