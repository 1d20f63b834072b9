"""The grpc-style servicers behind connectrpc's generated ASGI applications, so that one port
answers Connect, gRPC and gRPC-Web with the same handlers the grpcio server uses.

    app = asgi_app(RunServiceASGIApplication, runs, rs.DESCRIPTOR.services_by_name["RunService"])

A handler's ``context.abort(code, message)`` raises a ConnectError with the same code; the
codecs turn a request that does not parse into INVALID_ARGUMENT (connectrpc would answer
UNKNOWN, which makes Flyte clients start an OAuth flow) and send pre-serialised TailLogs
batches as they are; gzip compresses at level 1 and never inflates a request past the limit.
"""

from __future__ import annotations

import asyncio
import re
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any, NoReturn

import grpc
from connectrpc.code import Code
from connectrpc.codec import Codec
from connectrpc.compression.gzip import GzipCompression
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

from .registration import MalformedRequest, guard_stream, guard_unary

#: Largest request message, after decompression (CreateRun needs a few MiB at most).
MAX_REQUEST = 16 * 1024 * 1024
#: Longest error message sent: gRPC carries it in a header (grpc-message), which clients limit
#: (grpcio: 8 KiB of metadata) and hypercorn's pure-Python HPACK encodes slowly.
MAX_ERROR_CHARS = 2048
#: gzip level for responses: level 6 (the default) costs about four times the CPU of level 1
#: on log batches for a few percent less on the wire.
GZIP_LEVEL = 1


def code_of(status: grpc.StatusCode) -> Code:
    return Code[status.name]


def short(text: str) -> str:
    """``text`` cut to MAX_ERROR_CHARS (it may quote a client's very long input)."""
    if len(text) <= MAX_ERROR_CHARS:
        return text
    return text[:MAX_ERROR_CHARS] + f"… ({len(text) - MAX_ERROR_CHARS:,} more characters)"


class Aborted(ConnectError, grpc.aio.AbortError):  # type: ignore[misc]
    """What ``ConnectContext.abort`` raises: connectrpc sends its code, and the ``faults``
    wrappers let it through as they let grpc's own AbortError through."""


class ConnectContext:
    """The part of ``grpc.aio.ServicerContext`` the servicers use, for a connectrpc call."""

    __slots__ = ("request",)

    def __init__(self, request: RequestContext) -> None:
        self.request = request

    async def abort(self, code: grpc.StatusCode, details: str = "") -> NoReturn:
        raise Aborted(code_of(code), short(details))


class Encoded:
    """A response already serialised (TailLogs batches): the binary codec sends ``data`` as is,
    the JSON codec parses it into ``cls`` first."""

    __slots__ = ("cls", "data")

    def __init__(self, data: bytes, cls: type[Message]) -> None:
        self.data = data
        self.cls = cls


def _invalid(message: Message, error: Exception) -> ConnectError:
    text = MalformedRequest(message.DESCRIPTOR.full_name, error).message()
    return ConnectError(Code.INVALID_ARGUMENT, short(text))


class ProtoCodec(Codec[Any, Any]):
    def name(self) -> str:
        return "proto"

    def encode(self, message: Any) -> bytes:
        if type(message) is Encoded:
            return message.data
        return message.SerializeToString()  # type: ignore[no-any-return]

    def decode(self, data: bytes | bytearray, message: Any) -> Any:
        try:
            message.ParseFromString(bytes(data))
        except Exception as e:  # DecodeError, or anything else protobuf raises
            raise _invalid(message, e) from e
        return message


class JsonCodec(Codec[Any, Any]):
    def name(self) -> str:
        return "json"

    def encode(self, message: Any) -> bytes:
        if type(message) is Encoded:
            message = message.cls.FromString(message.data)
        return json_format.MessageToJson(message, indent=None).encode()

    def decode(self, data: bytes | bytearray, message: Any) -> Any:
        text = bytes(data)
        if not text.lstrip().startswith(b"{"):  # protobuf's parser takes "[]" for a message
            raise _invalid(message, ValueError("a message in JSON is an object: {...}"))
        try:
            json_format.Parse(text, message)
        except Exception as e:  # ParseError, UnicodeDecodeError, RecursionError, ...
            raise _invalid(message, e) from e
        return message


class BoundedGzip(GzipCompression):
    """gzip that stops inflating at ``limit`` bytes: a small request that unpacks to gigabytes
    is refused with RESOURCE_EXHAUSTED after ``limit`` bytes of work, not after all of it."""

    def __init__(self, limit: int = MAX_REQUEST, level: int = GZIP_LEVEL) -> None:
        super().__init__(level)
        self.limit = limit

    def decompress(self, data: bytes | bytearray | memoryview) -> bytes:
        out = bytearray()
        rest = bytes(data)
        while rest:  # a gzip stream may hold several members
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                out += inflater.decompress(rest, self.limit + 1 - len(out))
            except zlib.error as e:
                raise ConnectError(Code.INVALID_ARGUMENT, f"the request body is not valid gzip: {e}") from e
            if len(out) > self.limit:
                raise ConnectError(
                    Code.RESOURCE_EXHAUSTED,
                    f"the request unpacks to more than {self.limit:,} bytes, the most this service accepts",
                )
            if not inflater.eof:
                raise ConnectError(Code.INVALID_ARGUMENT, "the request body is truncated gzip")
            rest = inflater.unused_data
        return bytes(out)


CODECS: list[Codec[Any, Any]] = [ProtoCodec(), JsonCodec()]


def snake(name: str) -> str:
    """The generated Python name of an RPC: ``GetActionDataURIs`` → ``get_action_data_u_r_is``."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _unimplemented(name: str, streaming: bool) -> Callable[..., Any]:
    message = f"{name} is not implemented by the local Run service"

    async def unary(request: Any, ctx: RequestContext) -> Any:
        raise ConnectError(Code.UNIMPLEMENTED, message)

    async def stream(request: Any, ctx: RequestContext) -> AsyncIterator[Any]:
        raise ConnectError(Code.UNIMPLEMENTED, message)
        yield  # pragma: no cover - makes this an async generator

    return stream if streaming else unary


def _deadline(ctx: RequestContext) -> float | None:
    """When the caller's deadline (grpc-timeout, connect-timeout-ms) passes, as loop time:
    connectrpc reads it but leaves enforcing it to the handler (grpcio cancels the call)."""
    left = ctx.timeout_ms()
    return None if left is None else asyncio.get_running_loop().time() + max(left, 0) / 1000


def _expired(name: str) -> ConnectError:
    return ConnectError(Code.DEADLINE_EXCEEDED, f"{name} did not finish before the caller's deadline")


def _unary(name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    guarded = guard_unary(name, fn)

    async def unary(request: Any, ctx: RequestContext) -> Any:
        try:
            async with asyncio.timeout_at(_deadline(ctx)):
                return await guarded(request, ConnectContext(ctx))
        except TimeoutError:
            raise _expired(name) from None

    return unary


def _stream(name: str, fn: Callable[..., Any], output: type[Message]) -> Callable[..., AsyncIterator[Any]]:
    guarded = guard_stream(name, fn)

    async def stream(request: Any, ctx: RequestContext) -> AsyncIterator[Any]:
        deadline = _deadline(ctx)
        responses = guarded(request, ConnectContext(ctx))
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        response = await anext(responses)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise _expired(name) from None
                yield Encoded(response, output) if type(response) is bytes else response
        finally:
            await responses.aclose()

    return stream


def connect_service(servicer: object, service: ServiceDescriptor) -> SimpleNamespace:
    """An object with the generated Protocol's methods (``tail_logs(request, ctx)``), each
    calling ``servicer``'s grpc-style method of the same RPC; RPCs ``servicer`` lacks answer
    UNIMPLEMENTED."""
    methods: dict[str, Callable[..., Any]] = {}
    for method in service.methods:
        fn = getattr(servicer, method.name, None)
        if fn is None or method.client_streaming:
            methods[snake(method.name)] = _unimplemented(method.name, method.server_streaming)
        elif method.server_streaming:
            output = message_factory.GetMessageClass(method.output_type)
            methods[snake(method.name)] = _stream(method.name, fn, output)
        else:
            methods[snake(method.name)] = _unary(method.name, fn)
    return SimpleNamespace(**methods)


def asgi_app(app_class: Any, servicer: object, service: ServiceDescriptor) -> Any:
    """``app_class`` (a generated ``*ASGIApplication``) serving ``servicer`` with this module's
    codecs and compression. The generated constructors take no codecs argument, so they are set
    on the instance (``ConnectASGIApplication._codecs``, connectrpc 0.10)."""
    app = app_class(
        connect_service(servicer, service),
        read_max_bytes=MAX_REQUEST,
        compressions=[BoundedGzip()],
    )
    app._codecs = {codec.name(): codec for codec in CODECS}
    return app
