"""Who may talk to the service: loopback only by default; beyond it, TLS and a bearer token.

exposure = check_exposure("0.0.0.0", token_file=..., tls_cert=..., tls_key=...)
server = grpc.aio.server(interceptors=[TokenAuth(exposure.token)])
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from ..common.net import is_loopback_host
from ..errors import ServeError
from .oauth import OAuthSettings

_MIN_TOKEN = 16


class ExposureError(ServeError, ValueError):
    """The service was asked to listen in a way that would leave it open, or its token or TLS
    files cannot be used."""


@dataclass(frozen=True)
class Exposure:
    token: str | None = field(default=None, repr=False)
    tls: tuple[bytes, bytes] | None = field(default=None, repr=False)  # (key, certificate chain)
    new_token_file: Path | None = None  # where ``token`` is to be written once serving starts
    oauth: OAuthSettings | None = None  # ``--auth``: clients sign in (server/oauth.py)


def load_token(path: Path) -> str:
    """The token in ``path``; a missing file is created with a fresh random token, readable by
    its owner only. A file others can read is refused: a token anyone on the machine can read
    protects nothing."""
    path = path.expanduser()
    if not path.exists():
        try:
            save_token(path, secrets.token_urlsafe(32))
        except ExposureError as e:
            if not isinstance(e.__cause__, FileExistsError):  # else another process just made it
                raise
    return _read_token(path)


def _read_token(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        token = path.read_text().strip()
    except OSError as e:
        raise ExposureError(f"cannot read the token file {path}: {e.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ExposureError(f"the token file {path} can be read by other users; run: chmod 600 {path}")
    if len(token) < _MIN_TOKEN or any(c.isspace() for c in token):
        raise ExposureError(
            f"the token in {path} must be one word of at least {_MIN_TOKEN} characters; delete the"
            " file to have a random one written"
        )
    return token


def save_token(path: Path, token: str) -> None:
    """Write a new token file, mode 600; never over an existing one."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise ExposureError(
            f"cannot write the token file {path}: {e.strerror}; choose another --token-file"
        ) from e
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")


def _token_from(path: Path) -> tuple[str, Path | None]:
    """The token of ``path`` and, when the file does not exist yet, the path to write it to
    once the service can start (a start that fails leaves no token file behind)."""
    path = path.expanduser()
    if path.exists():
        return _read_token(path), None
    folder = path.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        why = "is not a writable folder" if folder.exists() else "does not exist"
        raise ExposureError(
            f"cannot write the token file {path}: {folder} {why}; create it or choose another --token-file"
        )
    return secrets.token_urlsafe(32), path


def _read_pem(path: Path, what: str) -> bytes:
    try:
        return path.expanduser().read_bytes()
    except OSError as e:
        raise ExposureError(f"cannot read the TLS {what} {path}: {e.strerror}") from None


def check_exposure(
    host: str,
    token_file: Path | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    oauth: OAuthSettings | None = None,
) -> Exposure:
    """What serving on ``host`` needs. Off loopback anyone who can reach the port could run
    commands as this user, so clients must sign in (``--auth``; or the one shared token of
    ``--token-file``), and TLS, because a token sent in clear text is given to whoever watches
    the network."""
    if (tls_cert is None) != (tls_key is None):
        raise ExposureError("TLS needs both --tls-cert and --tls-key")
    if oauth is not None and token_file is not None:
        raise ExposureError(
            "--auth and --token-file are two ways to sign clients in; choose one (--auth: API keys"
            " and device logins, see SECURITY.md)"
        )
    token, new_token_file = _token_from(token_file) if token_file is not None else (None, None)
    tls = None
    if tls_cert is not None and tls_key is not None:
        tls = (_read_pem(tls_key, "key"), _read_pem(tls_cert, "certificate"))
    signed_in = token is not None or oauth is not None
    if not is_loopback_host(host) and (not signed_in or tls is None):
        needs = (("--auth (or --token-file FILE)", not signed_in), ("--tls-cert/--tls-key", tls is None))
        missing = " and ".join(flag for flag, absent in needs if absent)
        raise ExposureError(
            f"listening on {host} would let anyone who reaches the port run commands as this user;"
            f" add {missing} (see SECURITY.md), or listen on 127.0.0.1"
        )
    return Exposure(token=token, tls=tls, new_token_file=new_token_file, oauth=oauth)


def _bearer(metadata: Any) -> bytes:
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            scheme, _, credential = text.partition(" ")
            if scheme.lower() == "bearer":
                return credential.strip().encode()
    return b""


_REFUSAL = (
    "this Run service needs its token: send 'authorization: Bearer <token>' (flyte_run_widget:"
    " init(api_key=...) or FLYTE_RUN_WIDGET_API_KEY); the token is in the service's --token-file"
)


async def _refuse_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, _REFUSAL)


async def _refuse_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, _REFUSAL)
    yield  # pragma: no cover - abort raises


class TokenAuth(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses every call without ``authorization: Bearer <token>``, before its request is read,
    so an unauthenticated caller learns nothing but that a token is needed."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if hmac.compare_digest(_bearer(details.invocation_metadata), self._token):
            return await continuation(details)
        handler = await continuation(details)
        if handler is not None and handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(_refuse_stream)
        return grpc.unary_unary_rpc_method_handler(_refuse_unary)
