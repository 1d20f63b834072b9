"""Errors a handler means to send, and the wrappers that keep every other exception from
escaping a handler as UNKNOWN (which makes real Flyte clients start an OAuth flow).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class ServiceFault(Exception):
    """A failure with the gRPC status code the client should see."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(message: str) -> ServiceFault:
    return ServiceFault(grpc.StatusCode.NOT_FOUND, message)


def invalid(message: str) -> ServiceFault:
    return ServiceFault(grpc.StatusCode.INVALID_ARGUMENT, message)


def precondition(message: str) -> ServiceFault:
    return ServiceFault(grpc.StatusCode.FAILED_PRECONDITION, message)


def exists(message: str) -> ServiceFault:
    return ServiceFault(grpc.StatusCode.ALREADY_EXISTS, message)


async def _abort(context: grpc.aio.ServicerContext, exc: Exception, name: str) -> None:
    if isinstance(exc, ServiceFault):
        await context.abort(exc.code, exc.message)
    log.exception("handler %s failed", name)
    await context.abort(grpc.StatusCode.INTERNAL, f"{name} failed in the local Run service: {exc}")


def unary(
    fn: Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]:
    """Wrap a unary handler so that every failure gets an explicit status code."""

    @functools.wraps(fn)
    async def handler(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
        try:
            return await fn(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc, fn.__name__)
            raise  # unreachable: abort always raises

    return handler


def streaming(
    fn: Callable[[Any, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext], AsyncIterator[Resp]]:
    """Wrap a server-streaming handler (an async generator) the same way."""

    @functools.wraps(fn)
    async def handler(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Any:
        try:
            async for item in fn(self, request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc, fn.__name__)

    return handler


def unimplemented(name: str) -> Callable[..., Awaitable[None]]:
    """A handler that answers UNIMPLEMENTED explicitly (the generated base raises instead)."""

    async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, f"{name} is not implemented by the local Run service"
        )

    handler.__name__ = name
    return handler
