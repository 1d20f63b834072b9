"""Clicks that reach a widget while a cell blocks the kernel's main thread.

    route_clicks_early(widget.comm, handle)   # ipykernel 7: peek at clicks on the shell thread
    install_kernel_pump()                     # ipykernel 6: process comm messages while blocking

While a cell executes, the kernel does not process incoming widget messages (ipywidgets #3468):
an Abort click would wait until ``run.wait()`` returns. These two hooks are how the widget hears it
anyway, one per ipykernel generation.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from ..client import loop as _loop

logger = logging.getLogger(__name__)

# The view's messages that must act at once, even while a cell blocks.
EARLY = ("abort", "wait", "abort_action", "select", "page_url")


def route_clicks_early(comm: Any, handle: Callable[[dict[str, Any]], None]) -> None:
    """Hand Abort and Wait clicks to ``handle`` on the background loop as soon as they arrive.

    ipykernel 7 reads every comm message on its shell-channel thread and asks the comm, through
    ``_reply_subshell_for``, where to route it; that thread keeps running while a cell blocks. We
    peek at our own clicks there and act on the background loop; the message still takes its
    normal path later, where handling it again changes nothing. ipykernel 6 has no such thread:
    there the jupyter-ui-poll pump below does the job.
    """
    original = getattr(comm, "_reply_subshell_for", None)
    if comm is None or original is None:
        return

    def route(data: Any, default: Any) -> Any:
        try:
            content = data.get("content") if isinstance(data, dict) else None
            if (
                isinstance(data, dict)
                and data.get("method") == "custom"
                and isinstance(content, dict)
                and content.get("type") in EARLY
            ):
                _loop.get_loop().call_soon_threadsafe(handle, content)
        except Exception:  # must never break the kernel's message routing
            logger.warning("could not route a click early; it is handled when the cell ends", exc_info=True)
        return original(data, default)

    comm._reply_subshell_for = route


_pump_installed = False


def install_kernel_pump() -> None:
    """On ipykernel 6, let the kernel handle widget clicks while a cell blocks in a sync call
    such as ``run.wait()``: while the call waits, process queued comm messages with
    jupyter-ui-poll (execute requests stay queued until the cell ends)."""
    global _pump_installed
    if _pump_installed:
        return
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None) if shell is not None else None
    if kernel is None or not hasattr(kernel, "do_one_iteration"):
        return  # not a kernel, or ipykernel 7+, where route_clicks_early does this
    _pump_installed = True
    _loop.set_blocking_hook(_kernel_pump)


_pumping = False


@contextlib.contextmanager
def _kernel_pump() -> Iterator[Any]:
    global _pumping
    if _pumping:
        yield lambda: None
        return
    from jupyter_ui_poll import ui_events

    _pumping = True
    try:
        with ui_events() as poll:
            yield lambda: poll(20)
    finally:
        _pumping = False
