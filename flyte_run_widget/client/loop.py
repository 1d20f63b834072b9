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
import functools
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None

# While a sync call blocks the main thread, this context manager (if set) gives a pump that runs
# every few milliseconds. The widget installs one that lets a notebook kernel process button
# clicks while a cell is blocked in ``run.wait()``.
_blocking_hook: Callable[[], AbstractContextManager[Callable[[], None]]] | None = None
_HOOK_INTERVAL = 0.05


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
        raise RuntimeError(
            "a sync flyte_run_widget call was made on its own background loop; "
            "use the .aio() form inside coroutines"
        )
    future = submit(coro)
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
    return await asyncio.wrap_future(submit(coro))


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
