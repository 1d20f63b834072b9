"""The async gRPC client: ``grpc.aio`` channels on the background loop (one for runs, one for
log tails on a connection of its own), errors mapped to exceptions that say what to do.

    client = get_client()
    resp = await client.unary("GetRunDetails", req, what="run 'abc'")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import grpc
from flyteidl2.auth import auth_service_pb2 as auth_pb2
from flyteidl2.auth import auth_service_pb2_grpc as auth_grpc
from flyteidl2.cluster import payload_pb2 as cluster_pb2
from flyteidl2.cluster import service_pb2_grpc as cluster_grpc
from flyteidl2.dataproxy import dataproxy_service_pb2 as dp
from flyteidl2.dataproxy import dataproxy_service_pb2_grpc as dp_grpc
from flyteidl2.workflow import run_logs_service_pb2_grpc, run_service_pb2_grpc

from ..common import keepalive
from ..common.net import MAX_MESSAGE_BYTES
from ..errors import (
    AlreadyFinishedError,
    AuthenticationError,
    ConfigError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ServiceError,
    ServiceUnavailableError,
    SignInError,
)
from . import loop as _loop
from .auth import Discovery, TokenSource, ssl_context
from .call_error import CallError
from .config import Config, build_config, parse_endpoint
from .diagnose import diagnose

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
UNARY_TIMEOUT = 30.0

_LOGS_RPCS = {"TailLogs"}
#: "grpc": grpc.aio channels (HTTP/2). "connect": the Connect protocol over HTTP/1.1 (plain text)
#: or ALPN (TLS), for proxies that pass only HTTP/1.1, as the flyte SDK >= 2.1 speaks.
TRANSPORTS = ("grpc", "connect")
DEFAULT_TRANSPORT = os.environ.get("FLYTE_RUN_WIDGET_TRANSPORT", "grpc")
# Where logs come from, per (org, project, domain): a DataProxyService stub, or _LEGACY for a
# service without ClusterService/DataProxyService (it has RunLogsService).
_LEGACY = "RunLogsService"


class Client:
    """Owns the channel. Create it anywhere; it only touches grpc on the background loop."""

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
        # OAuth2 credentials: one token for every channel, renewed before it expires.
        self._tokens: TokenSource | None = None
        self._bearer: tuple[str, str] | None = None  # the header the last call was given
        if config.credentials is not None:
            self._tokens = TokenSource(
                config.credentials,
                self._discover,
                endpoint=config.endpoint.target,
                verify=ssl_context(self._roots()),
                base_url=config.console_url,
            )

    # -- connection -------------------------------------------------------------------------

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

    async def _discover(self) -> Discovery:
        """The service's OAuth2 settings, through AuthMetadataService on this client's transport
        (no token: discovery is what gets one)."""
        await self._ensure()
        md = [("x-request-id", uuid.uuid4().hex)]
        try:
            if self._connect is not None:
                metadata, public = await self._connect.auth_metadata(dict(md), UNARY_TIMEOUT)
            else:
                stub = auth_grpc.AuthMetadataServiceStub(self._channel)
                metadata = await stub.GetOAuth2Metadata(
                    auth_pb2.GetOAuth2MetadataRequest(), metadata=md, timeout=UNARY_TIMEOUT
                )
                public = await stub.GetPublicClientConfig(
                    auth_pb2.GetPublicClientConfigRequest(), metadata=md, timeout=UNARY_TIMEOUT
                )
        except (grpc.aio.AioRpcError, CallError) as e:
            code, details = _status(e)
            if code == grpc.StatusCode.UNIMPLEMENTED:
                creds = self.config.credentials
                raise SignInError(
                    f"the service at {self.config.endpoint.target} does not answer AuthMetadataService"
                    f" discovery, so it cannot sign us in with {creds.auth_type if creds else 'OAuth2'}"
                    f" (from {creds.source if creds else 'the config'}); it may need no sign-in: drop the"
                    " credentials, or check the endpoint",
                    code=code.name,
                    details=details,
                ) from e
            raise self.map_status(code, details, what="sign-in discovery (AuthMetadataService)") from e
        return Discovery.from_responses(metadata, public)

    async def _authorize(self) -> tuple[str, str] | None:
        """The auth header for the next call (a token renewed if due); None without credentials."""
        if self._tokens is None:
            return None
        self._bearer = await self._tokens.header()
        return self._bearer

    def _refused(self, used: tuple[str, str] | None) -> bool:
        """After UNAUTHENTICATED: True when a new token is worth one more try."""
        if self._tokens is None or used is None:
            return False
        logger.info("the service refused the token; getting a new one to retry once")
        self._tokens.invalidate(used[1])
        return True

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

    # -- calls ------------------------------------------------------------------------------

    async def unary(self, name: str, request: Any, *, what: str = "", timeout: float = UNARY_TIMEOUT) -> Any:
        """Call a unary RPC; one retry after reconnecting if the service went away, one with a
        new token if it refused ours."""
        reconnected = renewed = False
        while True:
            await self._ensure()
            used = await self._authorize()
            try:
                if self._connect is not None:
                    return await self._connect.unary(name, request, self._headers(), timeout)
                return await self._method(name)(request, metadata=self._metadata(), timeout=timeout)
            except (grpc.aio.AioRpcError, CallError) as e:
                code, details = _status(e)
                if code == grpc.StatusCode.UNAVAILABLE and not reconnected:
                    logger.info("%s: service unavailable (%s); reconnecting to retry once", name, details)
                    reconnected = True
                    await self._reconnect_or_raise(e)
                    continue
                if code == grpc.StatusCode.UNAUTHENTICATED and not renewed and self._refused(used):
                    renewed = True
                    continue
                raise self.map_status(code, details, what=what) from e

    async def stream(self, name: str, request: Any, *, what: str = "") -> AsyncIterator[Any]:
        """Iterate a server stream; errors arrive mapped. Reconnecting is the caller's choice,
        because only the caller knows where to resume. TailLogs (a RunLogsService request) goes
        where the service's ClusterService sends logs (see ``_tail_logs``). A stream refused
        before its first message is tried once more with a new token."""
        renewed = False
        while True:
            await self._ensure()
            used = await self._authorize()
            responses: AsyncGenerator[Any, None]
            if name == "TailLogs":
                responses = self._tail_logs(request, what)
            elif self._connect is not None:
                responses = self._connect.stream(name, request, self._headers())
            else:
                responses = self._grpc_stream(self._method(name)(request, metadata=self._metadata()))
            answered = False
            try:
                async for item in responses:
                    answered = True
                    yield item
                return
            except (grpc.aio.AioRpcError, CallError) as e:
                code, details = _status(e)
                if (
                    code == grpc.StatusCode.UNAUTHENTICATED
                    and not answered
                    and not renewed
                    and self._refused(used)
                ):
                    renewed = True
                    continue
                raise self.map_status(code, details, what=what) from e
            finally:
                await responses.aclose()

    async def _grpc_stream(self, call: Any) -> AsyncGenerator[Any, None]:
        try:
            async for item in call:
                yield item
        finally:
            call.cancel()

    async def _tail_logs(self, request: Any, what: str) -> AsyncGenerator[Any, None]:
        """Flyte's log path since 2.1: SelectCluster(TAIL_LOGS), then DataProxyService/TailLogs on
        the endpoint it names (this one when it names none); RunLogsService/TailLogs on a service
        that implements neither. The responses have the same shape either way."""
        proxy = await self._log_route(request.action_id, what)
        if proxy is not _LEGACY:
            tail = dp.TailLogsRequest(action_id=request.action_id, attempt=request.attempt)
            responses: AsyncGenerator[Any, None]
            if self._connect is not None:
                responses = self._connect.tail_logs(proxy, tail, self._headers())
            else:
                responses = self._grpc_stream(proxy.TailLogs(tail, metadata=self._metadata()))
            answered = False
            try:
                async for item in responses:
                    answered = True
                    yield item
                return
            except (grpc.aio.AioRpcError, CallError) as e:
                if _status(e)[0] != grpc.StatusCode.UNIMPLEMENTED or answered:
                    raise
                self._log_routes[_scope(request.action_id)] = _LEGACY
            finally:
                await responses.aclose()
        legacy: AsyncGenerator[Any, None]
        if self._connect is not None:
            legacy = self._connect.stream("TailLogs", request, self._headers())
        else:
            assert self._logs is not None
            legacy = self._grpc_stream(self._logs.TailLogs(request, metadata=self._metadata()))
        try:
            async for item in legacy:
                yield item
        finally:
            await legacy.aclose()

    async def _log_route(self, action_id: Any, what: str) -> Any:
        key = _scope(action_id)
        route = self._log_routes.get(key)
        if route is not None:
            return route
        select = cluster_pb2.SelectClusterRequest(
            operation=cluster_pb2.SelectClusterRequest.Operation.OPERATION_TAIL_LOGS, action_id=action_id
        )
        try:
            if self._connect is not None:
                resp = await self._connect.select_cluster(select, self._headers(), UNARY_TIMEOUT)
            else:
                assert self._channel is not None
                resp = await cluster_grpc.ClusterServiceStub(self._channel).SelectCluster(
                    select, metadata=self._metadata(), timeout=UNARY_TIMEOUT
                )
        except (grpc.aio.AioRpcError, CallError) as e:
            if _status(e)[0] != grpc.StatusCode.UNIMPLEMENTED:
                raise
            route = _LEGACY
        else:
            if self._connect is not None:
                route = self._connect.proxy(resp.cluster_endpoint)
            else:
                route = dp_grpc.DataProxyServiceStub(self._data_channel(resp.cluster_endpoint))
        self._log_routes[key] = route
        return route

    def _data_channel(self, endpoint: str) -> grpc.aio.Channel:
        """The log channel for this endpoint; a new one, with the same TLS settings and token,
        for another."""
        assert self._log_channel is not None
        target = parse_endpoint(endpoint).target if endpoint else ""
        if not target or target == self.config.endpoint.target:
            return self._log_channel
        if target not in self._data_channels:
            self._data_channels[target] = self._new_channel(own_connection=True, target=target)
        return self._data_channels[target]

    async def _reconnect_or_raise(self, error: grpc.aio.AioRpcError | CallError) -> None:
        try:
            await self.reconnect()
        except ServiceUnavailableError:
            # The call's own error says most; the failed reconnect is its context.
            raise self._unreachable(_status(error)[1]) from error

    async def reconnect(self) -> None:
        """After a dropped stream: make sure the next call can connect (or raise)."""
        await self._reset()
        await self._ensure()
        if self._connect is not None:  # HTTP has no handshake to wait for in _ensure: ask once
            why = await self._connect.probe()
            if why is not None:
                raise self._unreachable(why)

    def map_error(self, e: grpc.aio.AioRpcError, *, what: str = "") -> ServiceError:
        return self.map_status(*_status(e), what=what)

    def map_status(self, code: grpc.StatusCode | None, details: str, *, what: str = "") -> ServiceError:
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
            creds = self.config.credentials
            fix = (
                f"the {creds.auth_type} credentials from {creds.source} got a token it refuses: check"
                " that they are for this service and not revoked"
                if creds is not None
                else "pass api_key= to init() (a Flyte API key, or this service's token) or set"
                " FLYTE_API_KEY (a Flyte API key) or FLYTE_RUN_WIDGET_API_KEY (a token), or set"
                " admin.authType in the Flyte config"
            )
            return AuthenticationError(
                f"the service at {target} did not accept our credentials ({details}); {fix}",
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


def _status(e: grpc.aio.AioRpcError | CallError) -> tuple[grpc.StatusCode, str]:
    if isinstance(e, CallError):
        return e.code, e.details
    return e.code(), e.details() or ""


def _scope(action_id: Any) -> tuple[str, str, str]:
    run = action_id.run
    return (run.org, run.project, run.domain)


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
    transport: str | None = None,
) -> Config:
    """Say which Run service to use; without arguments $FLYTE_API_KEY, else a Flyte config file
    (searched as the SDK searches: ./config.yaml, ./.flyte/config.yaml, <git root>/.flyte/config.yaml,
    $UCTL_CONFIG, $FLYTECTL_CONFIG, ~/.union/config.yaml, ~/.flyte/config.yaml), else the embedded
    local service in ``data_dir`` (default $FLYTE_RUN_WIDGET_DATA or ~/.local/share/flyte-run-widget).

    ``insecure`` plain text instead of TLS (default: plain on loopback and http://, TLS otherwise);
    ``api_key`` a Flyte API key (base64 of host:client_id:secret:org: endpoint, org and client
    credentials come from it) or else a bearer token sent as it is (default $FLYTE_RUN_WIDGET_API_KEY);
    neither is sent in plain text off loopback; ``ca_cert`` a PEM file of roots to trust, for a service with
    a self-signed certificate (config file: admin.caCertFilePath); ``transport`` "grpc" (default,
    or $FLYTE_RUN_WIDGET_TRANSPORT) or "connect" (the Connect protocol: HTTP/1.1 on plain text,
    through proxies that pass no HTTP/2, as the flyte SDK >= 2.1 talks).
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
    _use(Client(cfg, transport or DEFAULT_TRANSPORT))
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
            _use(Client(config_from_sdk(sdk), DEFAULT_TRANSPORT))
            _sdk_source = sdk
        elif _client is None:
            init()
    assert _client is not None
    return _client
