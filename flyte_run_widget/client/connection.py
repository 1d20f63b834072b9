"""The connection under ``rpc.Client``: ``grpc.aio`` channels made and waited on until ready (one
for runs, one for log tails on a connection of its own), or the Connect protocol's calls; the
headers every call carries."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import grpc
from flyteidl2.workflow import run_logs_service_pb2_grpc, run_service_pb2_grpc

from ..common import keepalive
from ..common.net import MAX_MESSAGE_BYTES
from ..errors import ConfigError
from .config import Config
from .diagnose import diagnose
from .status import CONNECT_TIMEOUT, unreachable

UNARY_TIMEOUT = 30.0

_LOGS_RPCS = {"TailLogs"}
#: "grpc": grpc.aio channels (HTTP/2). "connect": the Connect protocol over HTTP/1.1 (plain text)
#: or ALPN (TLS), for proxies that pass only HTTP/1.1, as the flyte SDK >= 2.1 speaks.
TRANSPORTS = ("grpc", "connect")


class Connection:
    """Owns the channels. Create it anywhere; it only touches grpc on the background loop."""

    def __init__(self, config: Config, transport: str = "grpc") -> None:
        if transport not in TRANSPORTS:
            raise ConfigError(f"transport {transport!r} is not one of {', '.join(TRANSPORTS)}")
        self.config = config
        self.transport = transport
        # transport="connect": every call goes through these instead of the channels.
        self._connect: Any = None  # a _connect.ConnectCalls
        self._channel: grpc.aio.Channel | None = None
        # Log tails get a connection of their own: on a shared one, log bytes the reader has
        # not taken yet hold back the small watch messages queued behind them
        # (bench/service_streams.py --shared coalesced about twice as many phase states).
        self._log_channel: grpc.aio.Channel | None = None
        self._runs: run_service_pb2_grpc.RunServiceStub | None = None
        self._logs: run_logs_service_pb2_grpc.RunLogsServiceStub | None = None
        self._log_routes: dict[tuple[str, str, str], Any] = {}
        # Channels to data-plane endpoints SelectCluster named, by endpoint.
        self._data_channels: dict[str, grpc.aio.Channel] = {}
        self._connect_lock: asyncio.Lock | None = None
        self._bearer: tuple[str, str] | None = None  # the auth header the last call was given

    def _new_channel(self, own_connection: bool = False, target: str | None = None) -> grpc.aio.Channel:
        options: list[tuple[str, str | int]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            *keepalive.client_options(),
            ("grpc.primary_user_agent", "flyte-run-widget"),
        ]
        if own_connection:  # channels to one target otherwise share a subchannel (a connection)
            options.append(("grpc.use_local_subchannel_pool", 1))
        target = target or self.config.endpoint.target
        if self.config.insecure:
            return grpc.aio.insecure_channel(target, options=options)
        credentials = grpc.ssl_channel_credentials(root_certificates=self._roots())
        return grpc.aio.secure_channel(target, credentials, options=options)

    def _roots(self) -> bytes | None:
        if self.config.insecure:
            return None
        return self.config.ca_cert.read_bytes() if self.config.ca_cert else self.config.ca_pem

    async def _ensure(self) -> None:
        if self._channel is not None or self._connect is not None:
            return
        if self.transport == "connect":
            from .connect_transport import ConnectCalls  # connectrpc and pyqwest only when used

            # No handshake to wait for: HTTP connects per call, and a call that cannot
            # connect fails with UNAVAILABLE within CONNECT_TIMEOUT.
            self._connect = ConnectCalls(self.config)
            return
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._channel is not None:
                return
            channel = self._new_channel()
            why = await self._wait_ready(channel)
            if why is not None:
                await channel.close()
                raise unreachable(self.config, why)
            try:
                log_channel = self._new_channel(own_connection=True)
            except BaseException:  # e.g. the CA file went away: no half-made client
                await channel.close()
                raise
            self._channel, self._log_channel = channel, log_channel
            self._runs = run_service_pb2_grpc.RunServiceStub(channel)
            self._logs = run_logs_service_pb2_grpc.RunLogsServiceStub(log_channel)

    async def _wait_ready(self, channel: grpc.aio.Channel) -> str | None:
        """None once the channel is ready; otherwise why not, in words, as soon as that is
        clear (a refused connection or a failed handshake does not wait out CONNECT_TIMEOUT)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CONNECT_TIMEOUT - 0.2
        failures = 0
        why = "no answer"
        while True:
            state = channel.get_state(try_to_connect=True)
            if state == grpc.ChannelConnectivity.READY:
                return None
            wait = deadline - loop.time()
            if state == grpc.ChannelConnectivity.TRANSIENT_FAILURE:
                failures += 1
                why, decisive = await asyncio.to_thread(
                    diagnose, self.config.endpoint, self.config.insecure, "gRPC"
                )
                # A service that is just starting may refuse once; three times, 0.5 s apart,
                # is an answer.
                if decisive or failures >= 3:
                    return why
                wait = min(wait, 0.5)
            if deadline - loop.time() <= 0:
                return why
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(channel.wait_for_state_change(state), max(wait, 0.01))

    async def _reset(self) -> None:
        """Drop the channels; for the embedded service, find where it listens now."""
        await self.close()
        if self.config.embedded and self.config.data_dir is not None:
            from dataclasses import replace

            from .config import parse_endpoint
            from .local_service import ensure_service

            endpoint = await asyncio.to_thread(ensure_service, self.config.data_dir)
            self.config = replace(self.config, endpoint=parse_endpoint(endpoint))

    async def close(self) -> None:
        channels = (self._channel, self._log_channel, *self._data_channels.values())
        self._channel = self._log_channel = None
        self._connect = None
        self._data_channels = {}
        self._log_routes = {}
        for channel in channels:
            if channel is not None:
                await channel.close()

    def _metadata(self) -> list[tuple[str, str]]:
        md = [("x-request-id", uuid.uuid4().hex)]
        if self._bearer is not None:
            md.append(self._bearer)
        elif self.config.api_key:
            md.append(("authorization", f"Bearer {self.config.api_key}"))
        return md

    def _headers(self) -> dict[str, str]:
        return dict(self._metadata())

    def _method(self, name: str) -> Any:
        stub = self._logs if name in _LOGS_RPCS else self._runs
        return getattr(stub, name)

    async def _grpc_stream(self, call: Any) -> AsyncGenerator[Any, None]:
        try:
            async for item in call:
                yield item
        finally:
            call.cancel()
