"""The async gRPC client: ``grpc.aio`` channels on the background loop (one for runs, one for
log tails on a connection of its own), errors mapped to exceptions that say what to do.

    client = get_client()
    resp = await client.unary("GetRunDetails", req, what="run 'abc'")

The connection is ``connection.Connection``, where logs are read ``log_tails.LogTails``, the
mapping of a status to an exception ``status.map_status``.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import grpc
from flyteidl2.auth import auth_service_pb2 as auth_pb2
from flyteidl2.auth import auth_service_pb2_grpc as auth_grpc

from ..errors import ServiceError, ServiceUnavailableError, SignInError
from . import loop as _loop
from .auth import Discovery, TokenSource, ssl_context
from .call_error import CallError
from .config import Config, build_config
from .connection import UNARY_TIMEOUT
from .log_tails import LogTails
from .status import map_status, status_of, unreachable

logger = logging.getLogger(__name__)

DEFAULT_TRANSPORT = os.environ.get("FLYTE_RUN_WIDGET_TRANSPORT", "grpc")


class _CallToken:
    """One call's token: the header each try was given and, when the service refuses it, one
    more try with a new token (unary calls and streams alike)."""

    def __init__(self, tokens: TokenSource | None) -> None:
        self._tokens = tokens
        self._used: tuple[str, str] | None = None
        self._renewed = False

    async def header(self) -> tuple[str, str] | None:
        """The auth header for the next try (a token renewed if due); None without credentials."""
        if self._tokens is None:
            return None
        self._used = await self._tokens.header()
        return self._used

    def retry(self, code: grpc.StatusCode) -> bool:
        """After a failed try: True when it was refused and a new token is worth one more."""
        if code != grpc.StatusCode.UNAUTHENTICATED or self._renewed:
            return False
        if self._tokens is None or self._used is None:
            return False
        logger.info("the service refused the token; getting a new one to retry once")
        self._tokens.invalidate(self._used[1])
        self._renewed = True
        return True


class Client(LogTails):
    """Owns the channel. Create it anywhere; it only touches grpc on the background loop."""

    def __init__(self, config: Config, transport: str = "grpc") -> None:
        super().__init__(config, transport)
        # OAuth2 credentials: one token for every channel, renewed before it expires.
        self._tokens: TokenSource | None = None
        if config.credentials is not None:
            self._tokens = TokenSource(
                config.credentials,
                self._discover,
                endpoint=config.endpoint.target,
                verify=ssl_context(self._roots()),
                base_url=config.console_url,
            )

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
            code, details = status_of(e)
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

    async def _authorize(self, token: _CallToken) -> None:
        """Give the next try the call's auth header (a token renewed if due)."""
        header = await token.header()
        if header is not None:
            self._bearer = header

    # -- calls ------------------------------------------------------------------------------

    async def unary(self, name: str, request: Any, *, what: str = "", timeout: float = UNARY_TIMEOUT) -> Any:
        """Call a unary RPC; one retry after reconnecting if the service went away, one with a
        new token if it refused ours."""
        reconnected = False
        token = _CallToken(self._tokens)
        while True:
            await self._ensure()
            await self._authorize(token)
            try:
                if self._connect is not None:
                    return await self._connect.unary(name, request, self._headers(), timeout)
                return await self._method(name)(request, metadata=self._metadata(), timeout=timeout)
            except (grpc.aio.AioRpcError, CallError) as e:
                code, details = status_of(e)
                if code == grpc.StatusCode.UNAVAILABLE and not reconnected:
                    logger.info("%s: service unavailable (%s); reconnecting to retry once", name, details)
                    reconnected = True
                    await self._reconnect_or_raise(e)
                    continue
                if token.retry(code):
                    continue
                raise self.map_status(code, details, what=what) from e

    async def stream(self, name: str, request: Any, *, what: str = "") -> AsyncIterator[Any]:
        """Iterate a server stream; errors arrive mapped. Reconnecting is the caller's choice,
        because only the caller knows where to resume. TailLogs (a RunLogsService request) goes
        where the service's ClusterService sends logs (see ``_tail_logs``). A stream refused
        before its first message is tried once more with a new token."""
        token = _CallToken(self._tokens)
        while True:
            await self._ensure()
            await self._authorize(token)
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
                code, details = status_of(e)
                if not answered and token.retry(code):
                    continue
                raise self.map_status(code, details, what=what) from e
            finally:
                await responses.aclose()

    async def _reconnect_or_raise(self, error: grpc.aio.AioRpcError | CallError) -> None:
        try:
            await self.reconnect()
        except ServiceUnavailableError:
            # The call's own error says most; the failed reconnect is its context.
            raise unreachable(self.config, status_of(error)[1]) from error

    async def reconnect(self) -> None:
        """After a dropped stream: make sure the next call can connect (or raise)."""
        await self._reset()
        await self._ensure()
        if self._connect is not None:  # HTTP has no handshake to wait for in _ensure: ask once
            why = await self._connect.probe()
            if why is not None:
                raise unreachable(self.config, why)

    def map_error(self, e: grpc.aio.AioRpcError, *, what: str = "") -> ServiceError:
        return self.map_status(*status_of(e), what=what)

    def map_status(self, code: grpc.StatusCode | None, details: str, *, what: str = "") -> ServiceError:
        return map_status(self.config, code, details, what=what)


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
