"""Which notebook host shows a widget, and the text fallback for hosts that cannot take what
the widget normally sends.

    detect_host()            # "colab", "marimo" or "jupyter"
    transport_for(host)      # "binary" (custom messages with buffers) or "text"

Google Colab does not deliver custom-message buffers, and does not show widget updates a
background thread sends while no cell runs. The "text" transport works around both: outgoing
messages wait in an outbox instead of being sent from the background loop; every view polls
(``{"type": "poll"}``, a message the kernel answers off the background loop) and the answer is the
outbox, base64 buffers and all, in one string trait (``outbox``), plus the state traits that
changed since the last poll. Set ``FLYTE_RUN_WIDGET_TRANSPORT_MODE=text`` (or ``binary``) to
choose by hand.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
from typing import Any

from ..client import loop as _loop

ENV = "FLYTE_RUN_WIDGET_TRANSPORT_MODE"
# Buffer bytes one poll's answer carries at most (one message more if the first is bigger): a long
# backlog goes out over several polls instead of one trait value of many megabytes.
MAX_POLL_BYTES = 2 * 1024 * 1024
TRANSPORTS = ("binary", "text")


def detect_host() -> str:
    modules = sys.modules
    if "google.colab" in modules:
        return "colab"
    if "marimo" in modules:
        return "marimo"
    return "jupyter"


def transport_for(host: str) -> str:
    chosen = os.environ.get(ENV, "").strip().lower()
    if chosen in TRANSPORTS:
        return chosen
    return "text" if host == "colab" else "binary"


def pack(messages: list[tuple[Any, list[Any]]], seq: int, idle: bool) -> str:
    """Messages as one JSON text: each buffer base64, the order kept; ``seq`` tells views a new
    value from a repeated one, ``idle`` that nothing more will come without a request."""
    items = [
        {"msg": msg, "b64": [base64.b64encode(bytes(b)).decode("ascii") for b in buffers]}
        for msg, buffers in messages
    ]
    return json.dumps({"seq": seq, "idle": idle, "items": items}, separators=(",", ":"))


class TextOutbox:
    """Mixed into ``RunWidget``: in the "text" transport, custom messages and state changes made
    on the background loop wait, and a view's poll sends them from the kernel's thread."""

    transport: str
    outbox: str

    def _init_outbox(self) -> None:
        self._queue: list[tuple[Any, list[Any]]] = []
        self._queue_lock = threading.Lock()
        self._seq = 0
        self._dirty: set[str] = set()

    def _held_back(self) -> bool:
        # Sends from the background loop wait for a poll; a poll's answer leaves from the thread
        # the kernel handles messages on (the main thread, or ipykernel 7's shell thread).
        return self.transport == "text" and _loop.in_loop_thread()

    def send_state(self, key: Any = None) -> None:
        if not self._held_back():
            super().send_state(key)  # type: ignore[misc]
            return
        keys = self.keys if key is None else [key] if isinstance(key, str) else list(key)  # type: ignore[attr-defined]
        with self._queue_lock:
            self._dirty.update(keys)

    def send(self, content: Any, buffers: Any = None) -> None:
        if self.transport != "text":
            super().send(content, buffers=buffers)  # type: ignore[misc]
            return
        with self._queue_lock:
            self._queue.append((content, list(buffers or ())))

    def _outbox_idle(self) -> bool:
        """True once the widget will send nothing more unasked (RunWidget overrides it)."""
        return False

    def _answer_poll(self) -> None:
        """Off the background loop: the queued messages and changed traits, sent now."""
        idle = self._outbox_idle()  # read first: what is queued after this counts next time
        with self._queue_lock:
            taken = size = 0
            for _msg, buffers in self._queue:
                size += sum(len(b) for b in buffers)
                if taken and size > MAX_POLL_BYTES:
                    break
                taken += 1
            queued, self._queue = self._queue[:taken], self._queue[taken:]
            idle = idle and not self._queue
            dirty, self._dirty = self._dirty, set()
        if dirty:
            self.send_state(sorted(dirty))
        if queued or idle:
            self._seq += 1
            self.outbox = pack(queued, self._seq, idle)
