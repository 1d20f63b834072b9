"""One ASGI application in front of the generated per-service ones: it routes by service,
refuses calls without the token before their body is read, and bounds how much body a call may
send; ``serve_hypercorn`` runs it on one port for Connect, gRPC and gRPC-Web (HTTP/1.1 and h2).

    app = Door([runs_app, logs_app, ...], token="...")
    await serve_hypercorn(app, sock, tls=None, stop=event)
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import socket
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from ssl import SSLContext
from typing import Any, Protocol
from urllib.parse import quote

import grpc
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from hypercorn.asyncio import serve
from hypercorn.config import Config

from .blobs import UPLOAD_PREFIX
from .door import MAX_REQUEST

log = logging.getLogger(__name__)

# An envelope's header and a little slack on top of the largest message.
_MAX_BODY = MAX_REQUEST + 1024
# Connect's HTTP statuses for the codes this module answers itself (connectrpc.com/docs/protocol).
_HTTP_STATUS = {Code.UNAUTHENTICATED: 401, Code.UNIMPLEMENTED: 501, Code.RESOURCE_EXHAUSTED: 429}
# How long an early answer waits for the rest of the request it will not use.
_DRAIN_SECONDS = 5.0
_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")

REFUSAL = (
    "this Run service needs its token: send 'authorization: Bearer <token>' (flyte_run_widget:"
    " init(api_key=...) or FLYTE_RUN_WIDGET_API_KEY); the token is in the service's --token-file"
)


def _header(scope: dict[str, Any], name: bytes) -> bytes:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value  # type: ignore[no-any-return]
    return b""


def _bearer(scope: dict[str, Any]) -> bytes:
    scheme, _, credential = _header(scope, b"authorization").partition(b" ")
    return credential.strip() if scheme.lower() == b"bearer" else b""


async def send_error(scope: dict[str, Any], send: Any, code: Code, message: str) -> None:
    """An error response before any of the request is read, in the caller's protocol: gRPC and
    gRPC-Web carry it in ``grpc-status`` headers, Connect as an HTTP status and a JSON body."""
    content_type = _header(scope, b"content-type").decode("latin-1")
    if content_type.startswith("application/grpc"):
        status = [
            (b"grpc-status", str(grpc.StatusCode[code.name].value[0]).encode()),
            (b"grpc-message", quote(message, safe=_SAFE).encode()),
        ]
        headers = [(b"content-type", content_type.encode("latin-1"))]
        if content_type.startswith("application/grpc-web"):  # a "trailers-only" response
            await send({"type": "http.response.start", "status": 200, "headers": headers + status})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        # gRPC clients want the status in trailers after the headers (grpcio takes headers
        # followed by an empty end of stream for a broken stream).
        await send({"type": "http.response.start", "status": 200, "headers": headers, "trailers": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await send({"type": "http.response.trailers", "headers": status, "more_trailers": False})
        return
    payload = json.dumps({"code": code.value, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": _HTTP_STATUS.get(code, 500),
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload, "more_body": False})


class Gate(Protocol):
    def refusal(self, scope: dict[str, Any]) -> str | None:
        """Why this call may not go on (None: it may), from its headers alone."""


class TokenGate:
    """The one shared token of ``--token-file``."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def refusal(self, scope: dict[str, Any]) -> str | None:
        return None if hmac.compare_digest(_bearer(scope), self._token) else REFUSAL


class Door:
    """Routes ``/<service>/<method>`` to the generated application of ``<service>``, and
    ``routes``' paths (plain HTTP endpoints) to their handlers. Every call but those and the
    ``open`` applications' must pass ``gate`` (or carry ``token``) before its body is read."""

    def __init__(
        self,
        apps: Iterable[Any],
        token: str | None = None,
        max_body: int = _MAX_BODY,
        gate: Gate | None = None,
        open_apps: Iterable[Any] = (),
        routes: Mapping[str, Any] | None = None,
        uploads: Any = None,
        task_token: str | None = None,
        task_services: Iterable[str] = (),
        pages: Any = None,
    ) -> None:
        self.open = {app.path: app for app in open_apps}
        self.apps = {**{app.path: app for app in apps}, **self.open}
        self.gate = gate if gate is not None else TokenGate(token) if token else None
        self.routes = dict(routes or {})
        self.max_body = max_body
        # An ASGI app for ``/upload/...`` (blobs.Blobs.handle_put): its URLs are signed, and
        # the flyte SDK sends no token to a signed URL.
        self.uploads = uploads
        # A second token, good only for ``task_services`` (what task processes call back).
        self.task_token = task_token.encode() if task_token else None
        self.task_services = frozenset(task_services)
        # An ASGI app for the GETs that are not calls (pages.Pages: the run and runs pages, their
        # script and styles, 404 for the rest); the pages' own calls pass the gate as any other.
        self.pages = pages

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if self.uploads is not None and scope["path"].startswith(UPLOAD_PREFIX):
            # The uploads bound their own size; the exchange only drains what they leave.
            if scope.get("http_version", "1.1").startswith("1"):
                # HTTP/1.1 closes the connection after an early answer: nothing to drain (and
                # the client of a refused upload may never send its body).
                await self.uploads(scope, receive, send)
            else:
                uploading = _Exchange(receive, send, 2**62)
                await self.uploads(scope, uploading.receive, uploading.send)
            return
        exchange = _Exchange(receive, send, self.max_body)
        route = self.routes.get(scope["path"])
        if route is not None:
            await route(scope, exchange.receive, exchange.send)
            return
        service = scope["path"].rpartition("/")[0]
        if self.pages is not None and scope.get("method") in ("GET", "HEAD") and service not in self.apps:
            await self.pages(scope, exchange.receive, exchange.send)
            return
        if self.gate is not None and service not in self.open:
            refusal = self._refusal(scope, service)
            if refusal is not None:
                await send_error(scope, exchange.send, Code.UNAUTHENTICATED, refusal)
                return
        app = self.apps.get(service)
        if app is None:
            message = f"{service.lstrip('/')} is not served here"
            await send_error(scope, exchange.send, Code.UNIMPLEMENTED, message)
            return
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > self.max_body:
            await send_error(scope, exchange.send, Code.RESOURCE_EXHAUSTED, exchange.too_large())
            return
        await app(scope, exchange.receive, exchange.send)

    def _refusal(self, scope: dict[str, Any], service: str) -> str | None:
        assert self.gate is not None
        # Task processes hold a token of their own, good for the child-action services only.
        task = self.task_token is not None and service in self.task_services
        if task and hmac.compare_digest(_bearer(scope), self.task_token or b""):
            return None
        return self.gate.refusal(scope)


class _Exchange:
    """One call's ``receive`` and ``send``. ``receive`` fails the call once the body passes
    ``max_body`` (connectrpc buffers a whole unary body, and an envelope as long as its header
    claims). ``send`` reads what is left of the request before the response ends: hypercorn
    0.18 drops the whole HTTP/2 connection when request data arrives for a stream it has
    closed (pgjones/hypercorn#334), and an early answer (no token, unknown service or content
    type) would otherwise do just that."""

    __slots__ = ("_receive", "_send", "complete", "max_body", "seen")

    def __init__(self, receive: Any, send: Any, max_body: int) -> None:
        self._receive = receive
        self._send = send
        self.max_body = max_body
        self.seen = 0
        self.complete = False

    def too_large(self) -> str:
        return f"the request is larger than {self.max_body:,} bytes, the most this service accepts"

    async def _next(self) -> Any:
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
        elif message["type"] == "http.disconnect":
            self.complete = True
        return message

    async def receive(self) -> Any:
        message = await self._next()
        if self.seen > self.max_body:
            raise ConnectError(Code.RESOURCE_EXHAUSTED, self.too_large())
        return message

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_DRAIN_SECONDS):
                    while not self.complete and self.seen <= self.max_body:
                        await self._next()
        await self._send(message)


class _Config(Config):
    """hypercorn's Config with the certificate and key given as PEM bytes rather than files."""

    tls: tuple[bytes, bytes] | None = None

    @property
    def ssl_enabled(self) -> bool:
        return self.tls is not None

    def create_ssl_context(self) -> SSLContext | None:
        if self.tls is None:
            return None
        key, chain = self.tls
        # The ssl module loads certificates from files only: a private folder, gone at once.
        with tempfile.TemporaryDirectory(prefix="frw-tls-") as folder:
            for name, data in (("key.pem", key), ("cert.pem", chain)):
                fd = os.open(Path(folder) / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
            self.keyfile, self.certfile = f"{folder}/key.pem", f"{folder}/cert.pem"
            try:
                return super().create_ssl_context()
            finally:
                self.keyfile = self.certfile = None  # type: ignore[assignment]  # hypercorn types them str, defaults None


def _quiet_when_cut(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Connection tasks cut at shutdown (by hypercorn or by us) end in CancelledError or a
    TaskGroup refusing new work: expected then, not worth a traceback in the log."""
    if not isinstance(context.get("exception"), asyncio.CancelledError | RuntimeError):
        loop.default_exception_handler(context)


async def serve_hypercorn(
    app: Door, sock: socket.socket, tls: tuple[bytes, bytes] | None, stop: asyncio.Event
) -> None:
    """Serve ``app`` on ``sock`` (taken over) until ``stop`` is set."""
    config = _Config()
    config.tls = tls
    config.bind = [f"fd://{sock.detach()}"]
    config.alpn_protocols = ["h2", "http/1.1"]
    # gRPC clients keep a connection open between calls; do not drop it after 5 s idle.
    config.keep_alive_timeout = 600
    # hypercorn closes an HTTP/2 connection after 1,000 requests by default, failing the calls
    # in flight on it (UNAVAILABLE); gRPC channels live as long as the notebook.
    config.keep_alive_max_requests = 2**62
    config.graceful_timeout = 1.0
    config.accesslog = None
    config.errorlog = "-"
    config.loglevel = "WARNING"
    serving = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not serving.done():
        # Calls still open are cut now; what hypercorn and asyncio would log about that is noise.
        asyncio.get_running_loop().set_exception_handler(_quiet_when_cut)
        logging.getLogger("hypercorn.error").disabled = True
        # hypercorn waits for idle keep-alive connections (a notebook's open channel) to close
        # by themselves; past the grace period they are cut.
        done, _ = await asyncio.wait({serving}, timeout=config.graceful_timeout + 1.0)
        if not done:
            serving.cancel()
    try:
        await serving
    except asyncio.CancelledError:
        pass
    except Exception as exc:
        # hypercorn's own teardown of connections it had to cut can fail (InvalidStateError
        # from its gather of them); the service is stopping anyway and must still end cleanly.
        log.debug("hypercorn ended with %r while stopping", exc)
