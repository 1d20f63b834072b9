"""Registering servicers on a ``grpc.aio`` server (the former gRPC-only server) and the guards
both servers put around every handler: a request that does not parse gets INVALID_ARGUMENT, no
response goes out over MAX_RESPONSE.

    add_to_server(grpc_server, runs, logs, (queue_pb2, queue_servicer), ...)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import grpc
from flyteidl2.workflow import run_service_pb2 as rs
from grpc.aio import ServicerContext as Context

from .service import MAX_RESPONSE, RunService


class MalformedRequest:
    """What a request that does not parse becomes, so the handler can answer INVALID_ARGUMENT
    (grpcio reports a deserializer's exception as UNKNOWN, which real Flyte clients take for
    an authentication problem)."""

    def __init__(self, type_name: str, error: Exception) -> None:
        self.type_name = type_name
        self.error = error

    def message(self) -> str:
        return f"the request is not a valid {self.type_name} message: {self.error or 'cannot be parsed'}"


def _parser(cls: Any) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return cls.FromString(data)
        except Exception as exc:  # DecodeError, or anything else protobuf raises
            return MalformedRequest(cls.DESCRIPTOR.full_name, exc)

    return parse


def _too_large(name: str, size: int) -> str:
    return (
        f"the {name} response would be {size:,} bytes, more than the {MAX_RESPONSE:,} a gRPC client"
        " accepts by default"
    )


def guard_unary(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    async def handler(request: Any, context: Context) -> Any:
        if isinstance(request, MalformedRequest):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message())
        response = await fn(request, context)
        size = response.ByteSize()
        if size > MAX_RESPONSE:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, _too_large(name, size))
        return response

    return handler


def guard_stream(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    async def handler(request: Any, context: Context) -> Any:
        if isinstance(request, MalformedRequest):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message())
        stream = fn(request, context)
        if inspect.isawaitable(stream):  # an UNIMPLEMENTED handler: it aborts
            await stream
            return
        async for response in stream:
            # TailLogs answers serialised bytes (see tail_logs_service.RunLogsService)
            size = len(response) if isinstance(response, bytes) else response.ByteSize()
            if size > MAX_RESPONSE:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, _too_large(name, size))
            yield response

    return handler


def add_to_server(server: Any, runs: RunService, logs: Any, *more: tuple[Any, Any]) -> None:
    """Register the RunService and RunLogsService servicers (and ``more`` (pb2 module, servicer)
    pairs) on a ``grpc.aio`` server, like the generated ``add_*_to_server`` functions, but so
    that a request that does not parse gets INVALID_ARGUMENT and no response goes out over
    MAX_RESPONSE."""
    from flyteidl2.workflow import run_logs_service_pb2 as rl_pb2

    for module, servicer in ((rs, runs), (rl_pb2, logs), *more):
        for service in module.DESCRIPTOR.services_by_name.values():
            handlers = {}
            for method in service.methods:
                request_cls = getattr(module, method.input_type.name)
                response_cls = getattr(module, method.output_type.name)
                fn = getattr(servicer, method.name)
                if method.client_streaming:
                    continue  # none in these services
                if method.server_streaming:
                    handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                        guard_stream(method.name, fn),
                        request_deserializer=_parser(request_cls),
                        response_serializer=_serialize,
                    )
                else:
                    handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                        guard_unary(method.name, fn),
                        request_deserializer=_parser(request_cls),
                        response_serializer=response_cls.SerializeToString,
                    )
            generic = grpc.method_handlers_generic_handler(service.full_name, handlers)
            server.add_generic_rpc_handlers((generic,))


def _serialize(response: Any) -> bytes:
    return response if type(response) is bytes else response.SerializeToString()
