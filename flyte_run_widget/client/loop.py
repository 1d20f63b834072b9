"""One background event loop for all gRPC work, and methods that are sync by default with an
``.aio()`` twin.

``grpc.aio`` channels are bound to the loop that created them, and a notebook cell already runs
inside Jupyter's loop, so every coroutine runs on a private loop in a daemon thread. A sync call
submits the coroutine there and blocks; ``.aio()`` awaits it without blocking the caller's loop.
This is why the package does not need nest-asyncio: no loop is ever re-entered.

    class Run:
        @syncify
        async def wait(self) -> None: ...

    run.wait()             # blocks the caller
    await run.wait.aio()   # awaits on the caller's loop
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import os
import sys
import threading
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar, overload

from ..errors import LoopError

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None

# While a sync call blocks the main thread, this context manager (if set) gives a pump that runs
# every few milliseconds. The widget installs one that lets a notebook kernel process button
# clicks while a cell is blocked in ``run.wait()``.
_blocking_hook: Callable[[], AbstractContextManager[Callable[[], None]]] | None = None
_HOOK_INTERVAL = 0.05


# Warnings raised by a coroutine on the background loop, for the call that waits for it to
# re-raise in the caller's thread: warnings.warn there would point into asyncio.
_pending_warnings: contextvars.ContextVar[list[tuple[str, type[Warning]]] | None] = contextvars.ContextVar(
    "flyte_run_widget_pending_warnings", default=None
)
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` at the user's line: the first frame outside this package, also from a
    coroutine that a sync call or an ``.aio()`` call runs on the background loop."""
    pending = _pending_warnings.get()
    if pending is not None:
        pending.append((message, category))
    else:
        _warn_outside_package(message, category)


def _warn_outside_package(message: str, category: type[Warning]) -> None:
    frame = sys._getframe(1)
    level = 2  # stacklevel 2 is our caller, frame
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


async def _collecting_warnings(coro: Coroutine[Any, Any, T], pending: list[tuple[str, type[Warning]]]) -> T:
    _pending_warnings.set(pending)  # this task's own context: nothing else sees it
    return await coro


def _reraise_warnings(pending: list[tuple[str, type[Warning]]]) -> None:
    for message, category in pending:
        _warn_outside_package(message, category)


def get_loop() -> asyncio.AbstractEventLoop:
    """The background loop, started on first use."""
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed() or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def _run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=_run, name="flyte-run-widget-loop", daemon=True)
            thread.start()
            ready.wait()
            _loop, _thread = loop, thread
        return _loop


def in_loop_thread() -> bool:
    return _thread is not None and threading.current_thread() is _thread


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule ``coro`` on the background loop from any thread."""
    return asyncio.run_coroutine_threadsafe(coro, get_loop())


def set_blocking_hook(hook: Callable[[], AbstractContextManager[Callable[[], None]]] | None) -> None:
    global _blocking_hook
    _blocking_hook = hook


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the background loop and block until it is done."""
    if in_loop_thread():
        coro.close()
        raise LoopError(
            "a sync flyte_run_widget call was made on its own background loop; "
            "use the .aio() form inside coroutines"
        )
    pending: list[tuple[str, type[Warning]]] = []
    future = submit(_collecting_warnings(coro, pending))
    try:
        return _wait(future)
    finally:
        _reraise_warnings(pending)


def _wait(future: concurrent.futures.Future[T]) -> T:
    try:
        hook = _blocking_hook
        if hook is None or threading.current_thread() is not threading.main_thread():
            return future.result()
        with hook() as pump:
            while True:
                try:
                    return future.result(timeout=_HOOK_INTERVAL)
                except concurrent.futures.TimeoutError:
                    pump()
    except KeyboardInterrupt:
        future.cancel()
        raise


async def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the background loop from any loop."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is get_loop():
        return await coro
    pending: list[tuple[str, type[Warning]]] = []
    try:
        return await asyncio.wrap_future(submit(_collecting_warnings(coro, pending)))
    finally:
        _reraise_warnings(pending)


def iterate_sync(agen: AsyncIterator[T]) -> Iterator[T]:
    """Drive an async iterator living on the background loop from sync code."""
    it = agen.__aiter__()
    try:
        while True:
            try:
                yield run_sync(_anext(it))
            except StopAsyncIteration:
                return
    finally:
        aclose = getattr(it, "aclose", None)
        if aclose is not None and not in_loop_thread():
            submit(aclose())


async def iterate_async(agen: AsyncIterator[T]) -> AsyncIterator[T]:
    """Drive an async iterator living on the background loop from another loop."""
    it = agen.__aiter__()
    try:
        while True:
            try:
                item = await run_async(_anext(it))
            except StopAsyncIteration:
                return
            yield item
    finally:
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            submit(aclose())


async def _anext(it: AsyncIterator[T]) -> T:
    return await it.__anext__()


class _Bound(Generic[T]):
    def __init__(self, fn: Callable[..., Any], owner: Any) -> None:
        self._fn = fn
        self._owner = owner
        functools.update_wrapper(self, fn)

    def _call(self, *args: Any, **kwargs: Any) -> Any:
        if self._owner is None:
            return self._fn(*args, **kwargs)
        return self._fn(self._owner, *args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> T:
        result = self._call(*args, **kwargs)
        if inspect.isasyncgen(result):
            return iterate_sync(result)  # type: ignore[return-value]
        return run_sync(result)

    def aio(self, *args: Any, **kwargs: Any) -> Any:
        result = self._call(*args, **kwargs)
        if inspect.isasyncgen(result):
            return iterate_async(result)
        return run_async(result)


class syncify(Generic[T]):
    """Make an ``async def`` (or async generator) method sync by default, with ``.aio()``.

    Works on instance methods and plain functions; ``syncify_classmethod`` covers classmethods.
    """

    def __init__(self, fn: Callable[..., Awaitable[T]] | Callable[..., AsyncIterator[T]]) -> None:
        self._fn = fn
        functools.update_wrapper(self, fn)

    @overload
    def __get__(self, obj: None, objtype: type) -> _Bound[T]: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> _Bound[T]: ...
    def __get__(self, obj: object | None, objtype: type | None = None) -> _Bound[T]:
        return _Bound(self._fn, obj)

    def __call__(self, *args: Any, **kwargs: Any) -> T:
        return _Bound[T](self._fn, None)(*args, **kwargs)

    def aio(self, *args: Any, **kwargs: Any) -> Any:
        return _Bound[T](self._fn, None).aio(*args, **kwargs)


class syncify_classmethod(syncify[T]):
    """``syncify`` for a classmethod: the class is passed as the first argument."""

    def __get__(self, obj: object | None, objtype: type | None = None) -> _Bound[T]:
        return _Bound(self._fn, objtype if objtype is not None else type(obj))
