"""The async gRPC client: ``grpc.aio`` channels on the background loop (one for runs, one for
log tails on a connection of its own), errors mapped to exceptions that say what to do.

    client = get_client()
    resp = await client.unary("GetRunDetails", req, what="run 'abc'")
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
from flyteidl2.workflow import run_logs_service_pb2_grpc, run_service_pb2_grpc

from . import _loop
from .config import Config, build_config
from .errors import (
    AlreadyFinishedError,
    AuthenticationError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    ServiceUnavailableError,
)

CONNECT_TIMEOUT = 5.0
UNARY_TIMEOUT = 30.0
_MAX_MESSAGE = 64 * 1024 * 1024

_LOGS_RPCS = {"TailLogs"}


class Client:
    """Owns the channel. Create it anywhere; it only touches grpc on the background loop."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._channel: grpc.aio.Channel | None = None
        # Log tails get a connection of their own: on a shared one, log bytes the reader has
        # not taken yet hold back the small watch messages queued behind them
        # (bench/service_streams.py --shared coalesced about twice as many phase states).
        self._log_channel: grpc.aio.Channel | None = None
        self._runs: run_service_pb2_grpc.RunServiceStub | None = None
        self._logs: run_logs_service_pb2_grpc.RunLogsServiceStub | None = None
        self._connect_lock: asyncio.Lock | None = None

    # -- connection -------------------------------------------------------------------------

    def _new_channel(self, own_connection: bool = False) -> grpc.aio.Channel:
        options: list[tuple[str, str | int]] = [
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_permit_without_calls", 0),
            ("grpc.primary_user_agent", "flyte-run-widget"),
        ]
        if own_connection:  # channels to one target otherwise share a subchannel (a connection)
            options.append(("grpc.use_local_subchannel_pool", 1))
        target = self.config.endpoint.target
        if self.config.insecure:
            return grpc.aio.insecure_channel(target, options=options)
        roots = self.config.ca_cert.read_bytes() if self.config.ca_cert else self.config.ca_pem
        credentials = grpc.ssl_channel_credentials(root_certificates=roots)
        return grpc.aio.secure_channel(target, credentials, options=options)

    async def _ensure(self) -> None:
        if self._channel is not None:
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
                raise self._unreachable(why)
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
                why, decisive = await asyncio.to_thread(self._diagnose)
                # A service that is just starting may refuse once; three times, 0.5 s apart,
                # is an answer.
                if decisive or failures >= 3:
                    return why
                wait = min(wait, 0.5)
            if deadline - loop.time() <= 0:
                return why
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(channel.wait_for_state_change(state), max(wait, 0.01))

    def _diagnose(self) -> tuple[str, bool]:
        """Why a connection failed, found with a plain TCP connect; True when that is final."""
        ep = self.config.endpoint
        try:
            socket.getaddrinfo(ep.host.strip("[]"), ep.port)
        except (socket.gaierror, UnicodeError):
            return f"the host name {ep.host!r} does not resolve", True
        try:
            with socket.create_connection((ep.host.strip("[]"), ep.port), timeout=1.0):
                pass
        except ConnectionRefusedError:
            return f"connection refused: nothing listens on port {ep.port}", False
        except OSError as e:
            return f"cannot connect: {e.strerror or e}", False
        other = "TLS" if self.config.insecure else "plain text"
        return (
            "the connection opened but the gRPC handshake failed: the service may expect"
            f" {other}, or may not be a gRPC service",
            False,
        )

    def _unreachable(self, detail: str = "") -> ServiceUnavailableError:
        cfg = self.config
        target = cfg.endpoint.target
        hint = (
            "the embedded service is not answering; run `flyte-run-widget serve` to see why"
            if cfg.embedded
            else "check that the service runs and the endpoint is right"
        )
        tls = "plain text" if cfg.insecure else "TLS"
        if not cfg.insecure:
            hint += "; if the service speaks plain text, pass insecure=True"
        elif not cfg.endpoint.is_loopback:
            hint += "; if the service needs TLS, pass insecure=False"
        msg = f"cannot reach the Flyte Run service at {target} over {tls} within {CONNECT_TIMEOUT:g} s"
        if detail:
            msg += f" ({detail})"
        return ServiceUnavailableError(f"{msg}: {hint}", code="UNAVAILABLE", details=detail)

    async def _reset(self) -> None:
        """Drop the channels; for the embedded service, find where it listens now."""
        await self.close()
        if self.config.embedded and self.config.data_dir is not None:
            from dataclasses import replace

            from .config import parse_endpoint
            from .server.launcher import ensure_service

            endpoint = await asyncio.to_thread(ensure_service, self.config.data_dir)
            self.config = replace(self.config, endpoint=parse_endpoint(endpoint))

    async def close(self) -> None:
        channels = (self._channel, self._log_channel)
        self._channel = self._log_channel = None
        for channel in channels:
            if channel is not None:
                await channel.close()

    def _metadata(self) -> list[tuple[str, str]]:
        md = [("x-request-id", uuid.uuid4().hex)]
        if self.config.api_key:
            md.append(("authorization", f"Bearer {self.config.api_key}"))
        return md

    def _method(self, name: str) -> Any:
        stub = self._logs if name in _LOGS_RPCS else self._runs
        return getattr(stub, name)

    # -- calls ------------------------------------------------------------------------------

    async def unary(self, name: str, request: Any, *, what: str = "", timeout: float = UNARY_TIMEOUT) -> Any:
        """Call a unary RPC; one retry after reconnecting if the service went away."""
        for attempt in range(2):
            await self._ensure()
            try:
                return await self._method(name)(request, metadata=self._metadata(), timeout=timeout)
            except grpc.aio.AioRpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE and attempt == 0:
                    await self._reconnect_or_raise(e)
                    continue
                raise self.map_error(e, what=what) from None
        raise AssertionError("unreachable")

    async def stream(self, name: str, request: Any, *, what: str = "") -> AsyncIterator[Any]:
        """Iterate a server stream; errors arrive mapped. Reconnecting is the caller's choice,
        because only the caller knows where to resume."""
        await self._ensure()
        call = self._method(name)(request, metadata=self._metadata())
        try:
            async for item in call:
                yield item
        except grpc.aio.AioRpcError as e:
            raise self.map_error(e, what=what) from None
        finally:
            call.cancel()

    async def _reconnect_or_raise(self, error: grpc.aio.AioRpcError) -> None:
        try:
            await self._reset()
            await self._ensure()
        except ServiceUnavailableError:
            raise self._unreachable(error.details() or "") from None

    async def reconnect(self) -> None:
        """After a dropped stream: make sure the next call can connect (or raise)."""
        await self._reset()
        await self._ensure()

    def map_error(self, e: grpc.aio.AioRpcError, *, what: str = "") -> ServiceError:
        code = e.code()
        details = e.details() or ""
        name = code.name if code is not None else "UNKNOWN"
        subject = what or "the request"
        target = self.config.endpoint.target
        if code == grpc.StatusCode.NOT_FOUND:
            return NotFoundError(
                f"{subject} was not found at {target} ({details}); check the name, "
                f"project {self.config.project!r} and domain {self.config.domain!r}",
                code=name,
                details=details,
            )
        if code == grpc.StatusCode.UNAVAILABLE:
            return self._unreachable(details)
        if code == grpc.StatusCode.UNAUTHENTICATED:
            return AuthenticationError(
                f"the service at {target} did not accept our credentials ({details}); "
                "pass api_key= to init() or set FLYTE_RUN_WIDGET_API_KEY",
                code=name,
                details=details,
            )
        if code == grpc.StatusCode.PERMISSION_DENIED:
            return PermissionDeniedError(
                f"not allowed: {subject} ({details}); ask an admin for access to project "
                f"{self.config.project!r}",
                code=name,
                details=details,
            )
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            return InvalidArgumentError(
                f"the service rejected {subject}: {details}", code=name, details=details
            )
        if code == grpc.StatusCode.FAILED_PRECONDITION:
            return AlreadyFinishedError(f"{subject}: {details}", code=name, details=details)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return ServiceUnavailableError(
                f"{subject} timed out at {target}; the service is slow or overloaded, try again",
                code=name,
                details=details,
            )
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return ServiceError(
                f"the service at {target} does not implement {subject}; it may be an older Flyte",
                code=name,
                details=details,
            )
        return ServiceError(f"{subject} failed at {target}: {name}: {details}", code=name, details=details)


_client: Client | None = None
# The flyte SDK's client that _client was configured from; None when init() chose.
_sdk_source: object | None = None


def init(
    endpoint: str | None = None,
    *,
    insecure: bool | None = None,
    org: str | None = None,
    project: str | None = None,
    domain: str | None = None,
    api_key: str | None = None,
    ca_cert: str | os.PathLike[str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> Config:
    """Say which Run service to use; without arguments a Flyte config file (./config.yaml,
    .flyte/config.yaml, $FLYTECTL_CONFIG, ~/.flyte/config.yaml), else the embedded local service
    in ``data_dir`` (default $FLYTE_RUN_WIDGET_DATA or ~/.local/share/flyte-run-widget).

    ``insecure`` plain text instead of TLS (default: plain on loopback and http://, TLS otherwise);
    ``api_key`` a bearer token sent with every call (default $FLYTE_RUN_WIDGET_API_KEY; never
    sent in plain text off loopback); ``ca_cert`` a PEM file of roots to trust, for a service with
    a self-signed certificate (config file: admin.caCertFilePath).
    """
    global _sdk_source
    cfg = build_config(
        endpoint,
        insecure=insecure,
        org=org,
        project=project,
        domain=domain,
        api_key=api_key,
        ca_cert=ca_cert,
        config_file=config_file,
        data_dir=data_dir,
    )
    _use(Client(cfg))
    _sdk_source = None
    return cfg


def _use(client: Client) -> None:
    global _client
    old, _client = _client, client
    if old is not None and old._channel is not None:
        _loop.submit(old.close())


def get_client() -> Client:
    """The client init() configured; without init(), the flyte SDK's settings when the SDK was
    initialised in this kernel (followed when it is initialised again), else the default (config
    file or embedded service), chosen on first use."""
    global _sdk_source
    if _client is None or _sdk_source is not None:
        from .sdk_config import config_from_sdk, sdk_client

        sdk = sdk_client()
        if sdk is not None and sdk is not _sdk_source:
            _use(Client(config_from_sdk(sdk)))
            _sdk_source = sdk
        elif _client is None:
            init()
    assert _client is not None
    return _client
