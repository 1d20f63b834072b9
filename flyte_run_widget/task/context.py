"""Where calling a task starts a child action: inside a task process the service started
(``entrypoint.main`` marks it), under the group ``group("name")`` set.

    with group("training"):
        scores = await asyncio.gather(*(train(seed=s) for s in range(10)))
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .controller import Controller

#: Where a failing task leaves its exception, pickled, beside error.pb: a parent that called it
#: raises it as it was.
ERROR_PICKLE = "error.pkl"

_group: contextvars.ContextVar[str] = contextvars.ContextVar("flyte_run_widget_group", default="")
_in_task = False
_controller: Controller | None = None
_lock = threading.Lock()


@contextlib.contextmanager
def group(name: str) -> Iterator[None]:
    """Child actions started inside are shown under the group ``name`` of their parent."""
    token = _group.set(str(name))
    try:
        yield
    finally:
        _group.reset(token)


def current_group() -> str:
    return _group.get()


def enter_task() -> None:
    """Called by the task entrypoint: calls to tasks from here on start child actions."""
    global _in_task
    _in_task = True


def in_task() -> bool:
    return _in_task


def controller() -> Controller:
    """The process's one controller, made on the first child (leaf tasks never pay for it)."""
    global _controller
    with _lock:
        if _controller is None:
            from .controller import Controller

            _controller = Controller.from_env()
        return _controller


def close() -> None:
    global _controller
    with _lock:
        if _controller is not None:
            _controller.close()
            _controller = None
