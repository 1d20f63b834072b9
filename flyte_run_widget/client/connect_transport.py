"""Calls over the Connect protocol (connectrpc's generated clients on pyqwest), for networks where
gRPC does not pass: HTTP/1.1 on plain text, ALPN (usually HTTP/2) on TLS, as the flyte SDK >= 2.1
talks. ``client.Client`` uses it when ``init(transport="connect")``.

    calls = ConnectCalls(config)
    response = await calls.unary("GetRunDetails", request, headers, timeout=30)
    async for item in calls.stream("WatchRunDetails", request, headers): ...
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import grpc
from connectrpc.errors import ConnectError
from flyteidl2.auth import auth_service_pb2 as auth_pb2
from flyteidl2.auth.auth_service_connect import AuthMetadataServiceClient
from flyteidl2.cluster.service_connect import ClusterServiceClient
from flyteidl2.dataproxy.dataproxy_service_connect import DataProxyServiceClient
from flyteidl2.workflow.run_logs_service_connect import RunLogsServiceClient
from flyteidl2.workflow.run_service_connect import RunServiceClient
from pyqwest import Client as HTTPClient
from pyqwest import HTTPTransport, Request, Response

from .call_error import CallError
from .config import Config, Endpoint, parse_endpoint
from .diagnose import diagnose

CONNECT_TIMEOUT = 5.0

# Content types a Connect (or gRPC-Web) server answers with; anything else on an error status is
# not a Connect answer: a web server, a proxy's error page, a gRPC-only port.
_CONNECT_TYPES = ("application/json", "application/proto", "application/connect+", "application/grpc")
# Statuses whose meaning connectrpc already maps as Connect prescribes whatever the body:
# 404 is an unknown procedure (UNIMPLEMENTED, which callers fall back on), 401/403 an auth proxy.
_MEANINGFUL = {401, 403, 404}


class NotConnectError(Exception):
    """The endpoint answered HTTP, but not in the Connect protocol."""


class _Checked:
    """A pyqwest transport that turns an answer that is not Connect into ``NotConnectError``
    (connectrpc would report HTTP 400 from any web server as INTERNAL "Bad Request")."""

    def __init__(self, inner: HTTPTransport) -> None:
        self.inner = inner

    async def execute(self, request: Request) -> Response:
        response = await self.inner.execute(request)
        kind = response.headers.get("content-type", "")
        if response.status == 200 or response.status in _MEANINGFUL or kind.startswith(_CONNECT_TYPES):
            return response
        await response.aclose()
        origin = "/".join(request.url.split("/")[:3])
        raise NotConnectError(
            f"{origin} answered HTTP {response.status} ({kind or 'no content type'}), which is"
            " not the Connect protocol: the endpoint may be another web server, a proxy that"
            " rejects the call, or a port that speaks only gRPC (then use transport='grpc')"
        )


def _status(e: ConnectError) -> CallError:
    if isinstance(e.__cause__, NotConnectError):
        return CallError(grpc.StatusCode.UNAVAILABLE, str(e.__cause__))
    name = "CANCELLED" if e.code.name == "CANCELED" else e.code.name
    return CallError(grpc.StatusCode[name], e.message)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _address(endpoint: Endpoint, insecure: bool) -> str:
    host = f"[{endpoint.host.strip('[]')}]" if ":" in endpoint.host else endpoint.host
    return f"{'http' if insecure else 'https'}://{host}:{endpoint.port}"


class ConnectCalls:
    """The Run, RunLogs, Cluster and DataProxy services of one endpoint, and DataProxy clients
    for the data-plane endpoints SelectCluster names (same TLS settings; the caller passes the
    same headers, hence the same token)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        roots = config.ca_cert.read_bytes() if config.ca_cert else None
        transport = HTTPTransport(
            tls_ca_cert=roots,
            tls_include_system_certs=roots is None,
            connect_timeout=CONNECT_TIMEOUT,
            # Responses here are mostly log batches: gzip costs more CPU than it saves on a
            # fast link, and the service already compresses at level 1 when asked.
            enable_gzip=not config.endpoint.is_loopback,
        )
        address = _address(config.endpoint, config.insecure)
        self.http = HTTPClient(_Checked(transport))
        kwargs: dict[str, Any] = {"http_client": self.http, "send_compression": None}
        if config.endpoint.is_loopback:
            kwargs["accept_compression"] = ()
        self._kwargs = kwargs
        self._address = address
        self.runs = RunServiceClient(address, **kwargs)
        self.logs = RunLogsServiceClient(address, **kwargs)
        self.cluster = ClusterServiceClient(address, **kwargs)
        self.auth = AuthMetadataServiceClient(address, **kwargs)
        self._proxies: dict[str, DataProxyServiceClient] = {"": DataProxyServiceClient(address, **kwargs)}

    async def _error(self, e: ConnectError) -> CallError:
        """The call's error; a connection that failed without an HTTP answer is explained the
        way the gRPC transport explains it (refused, unknown host, TLS against plain text)."""
        cause = e.__cause__
        if (
            e.code.name == "UNAVAILABLE"
            and cause is not None
            and not isinstance(cause, (ConnectError, NotConnectError))
        ):
            cfg = self.config
            why, _ = await asyncio.to_thread(diagnose, cfg.endpoint, cfg.insecure, "Connect")
            return CallError(grpc.StatusCode.UNAVAILABLE, f"{why}; the HTTP client said: {e.message}")
        return _status(e)

    async def probe(self) -> str | None:
        """None when the endpoint answers HTTP at all (as a gRPC channel's handshake would show);
        otherwise why not. A plain request through the same client, so that it takes the same
        route (proxies included) as the calls."""
        try:
            await asyncio.wait_for(self.http.get(self._address + "/"), CONNECT_TIMEOUT)
        except NotConnectError:
            return None
        except Exception as e:  # pyqwest's connect, TLS and protocol errors, or the timeout
            cfg = self.config
            why, _ = await asyncio.to_thread(diagnose, cfg.endpoint, cfg.insecure, "Connect")
            return f"{why}; the HTTP client said: {e or type(e).__name__}"
        return None

    def _stub(self, name: str) -> Any:
        return self.logs if name == "TailLogs" else self.runs

    async def unary(self, name: str, request: Any, headers: Mapping[str, str], timeout: float) -> Any:
        try:
            return await getattr(self._stub(name), _snake(name))(
                request, headers=headers, timeout_ms=int(timeout * 1000)
            )
        except ConnectError as e:
            raise await self._error(e) from e

    async def stream(self, name: str, request: Any, headers: Mapping[str, str]) -> AsyncGenerator[Any, None]:
        responses = getattr(self._stub(name), _snake(name))(request, headers=headers)
        try:
            async for item in responses:
                yield item
        except ConnectError as e:
            raise await self._error(e) from e
        finally:
            aclose = getattr(responses, "aclose", None)
            if aclose is not None:
                await aclose()

    async def select_cluster(self, request: Any, headers: Mapping[str, str], timeout: float) -> Any:
        try:
            return await self.cluster.select_cluster(request, headers=headers, timeout_ms=int(timeout * 1000))
        except ConnectError as e:
            raise await self._error(e) from e

    async def auth_metadata(self, headers: Mapping[str, str], timeout: float) -> tuple[Any, Any]:
        """GetOAuth2Metadata and GetPublicClientConfig, in that order."""
        timeout_ms = int(timeout * 1000)
        try:
            metadata = await self.auth.get_o_auth2_metadata(
                auth_pb2.GetOAuth2MetadataRequest(), headers=headers, timeout_ms=timeout_ms
            )
            public = await self.auth.get_public_client_config(
                auth_pb2.GetPublicClientConfigRequest(), headers=headers, timeout_ms=timeout_ms
            )
        except ConnectError as e:
            raise await self._error(e) from e
        return metadata, public

    def proxy(self, endpoint: str) -> Any:
        """A DataProxyService client for ``endpoint`` ("" or this one: this endpoint's)."""
        if not endpoint:
            return self._proxies[""]
        target = parse_endpoint(endpoint)
        if target.target == self.config.endpoint.target:
            return self._proxies[""]
        address = _address(target, self.config.insecure)
        if address not in self._proxies:
            self._proxies[address] = DataProxyServiceClient(address, **self._kwargs)
        return self._proxies[address]

    async def tail_logs(
        self, proxy: Any, request: Any, headers: Mapping[str, str]
    ) -> AsyncGenerator[Any, None]:
        responses = proxy.tail_logs(request, headers=headers)
        try:
            async for item in responses:
                yield item
        except ConnectError as e:
            raise _status(e) from e
        finally:
            aclose = getattr(responses, "aclose", None)
            if aclose is not None:
                await aclose()
