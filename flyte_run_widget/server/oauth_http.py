"""The OAuth2 HTTP endpoints of ``serve --auth``, as ASGI handlers the Door routes to by path:
the token endpoint (client credentials with HTTP Basic, RFC 6749 4.4; the device grant, RFC 8628
3.4), the device authorization endpoint (RFC 8628 3.1), the page the verification link opens,
and RFC 8414 metadata. Every error is an RFC 6749 5.2 JSON error naming cause and fix; no error
repeats a credential the caller sent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from .auth_store import AuthStore, DeviceState, normalize_user_code, secret_matches
from .oauth import (
    DEVICE_AUTHORIZATION_PATH,
    DEVICE_GRANT,
    MAX_CREDENTIAL,
    TOKEN_PATH,
    VERIFICATION_PATH,
    WELL_KNOWN_PATH,
    OAuthSettings,
    base_url,
    metadata,
)
from .throttle import Throttle

log = logging.getLogger(__name__)

MAX_FORM = 16 * 1024
Route = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str, headers: tuple = ()) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers


def _header(scope: dict[str, Any], name: bytes) -> bytes:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return b""


async def _respond(send: Any, status: int, body: bytes, content_type: bytes, headers: tuple = ()) -> None:
    start = [
        (b"content-type", content_type),
        (b"cache-control", b"no-store"),
        (b"pragma", b"no-cache"),
        (b"x-content-type-options", b"nosniff"),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _json(send: Any, status: int, payload: dict[str, Any], headers: tuple = ()) -> None:
    await _respond(send, status, json.dumps(payload).encode(), b"application/json", headers)


async def _read_form(scope: dict[str, Any], receive: Any) -> dict[str, str]:
    if scope.get("method") != "POST":
        raise OAuthError(405, "invalid_request", "this endpoint takes POST with a form body")
    content_type = _header(scope, b"content-type").split(b";")[0].strip().lower()
    if content_type != b"application/x-www-form-urlencoded":
        raise OAuthError(
            400, "invalid_request", "the body must be a form: Content-Type application/x-www-form-urlencoded"
        )
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise OAuthError(400, "invalid_request", "the request ended before its body")
        body += message.get("body", b"")
        if len(body) > MAX_FORM:
            raise OAuthError(413, "invalid_request", f"the form is larger than {MAX_FORM:,} bytes")
        if not message.get("more_body", False):
            break
    try:
        text = body.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=32)
    except (UnicodeDecodeError, ValueError) as e:
        raise OAuthError(400, "invalid_request", "the body is not a URL-encoded form") from e
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:  # RFC 6749 3.2: parameters must not repeat
            raise OAuthError(400, "invalid_request", f"the form names {key[:40]!r} more than once")
        form[key] = value
    return form


def _basic(scope: dict[str, Any]) -> tuple[str, str] | None:
    """(client_id, secret) from ``Authorization: Basic``, form-decoded as RFC 6749 2.3.1 says."""
    scheme, _, encoded = _header(scope, b"authorization").partition(b" ")
    if scheme.lower() != b"basic":
        return None
    if len(encoded) > 4 * MAX_CREDENTIAL:
        raise OAuthError(400, "invalid_request", "the Basic credentials are too long")
    try:
        text = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise OAuthError(400, "invalid_request", "the Basic credentials are not base64 of 'id:secret'") from e
    client_id, colon, secret = text.partition(":")
    if not colon:
        raise OAuthError(400, "invalid_request", "the Basic credentials are not 'id:secret'")
    return unquote_plus(client_id), unquote_plus(secret)


def _peer(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"


class OAuthEndpoints:
    def __init__(self, store: AuthStore, settings: OAuthSettings, tls: bool, fallback_host: str) -> None:
        self.store = store
        self.settings = settings
        self.tls = tls
        self.fallback_host = fallback_host
        self.throttle = Throttle()

    def routes(self) -> dict[str, Route]:
        return {
            TOKEN_PATH: self._guarded(self.token),
            DEVICE_AUTHORIZATION_PATH: self._guarded(self.device_authorization),
            VERIFICATION_PATH: self.verification_page,
            WELL_KNOWN_PATH: self.well_known,
        }

    def _guarded(self, handler: Callable[..., Awaitable[dict[str, Any]]]) -> Route:
        async def route(scope: dict[str, Any], receive: Any, send: Any) -> None:
            try:
                payload = await handler(scope, await _read_form(scope, receive))
            except OAuthError as e:
                await _json(send, e.status, {"error": e.error, "error_description": e.description}, e.headers)
                return
            await _json(send, 200, payload)

        return route

    def _audience(self, form: dict[str, str]) -> None:
        audience = form.get("audience", "")
        if audience and audience != self.settings.audience:
            raise OAuthError(
                400,
                "invalid_target",
                f"this service issues tokens for the audience {self.settings.audience!r} only",
            )

    async def token(self, scope: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        grant = form.get("grant_type", "")
        if grant == "client_credentials":
            token = await self._client_credentials(scope, form)
        elif grant == DEVICE_GRANT:
            token = self._device_grant(form)
        else:
            raise OAuthError(
                400,
                "unsupported_grant_type",
                f"grant_type must be client_credentials or {DEVICE_GRANT}",
            )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(self.settings.token_ttl),
            "scope": " ".join(self.settings.scopes),
        }

    async def _client_credentials(self, scope: dict[str, Any], form: dict[str, str]) -> str:
        credentials = _basic(scope)
        if credentials is None:
            raise OAuthError(
                401,
                "invalid_client",
                "send the API key's client id and secret as 'Authorization: Basic base64(id:secret)'",
                ((b"www-authenticate", b'Basic realm="flyte-run-widget"'),),
            )
        client_id, secret = credentials
        self._audience(form)
        key = (client_id[:MAX_CREDENTIAL], _peer(scope))
        wait = self.throttle.wait_left(key)
        if wait > 0:
            raise OAuthError(
                429,
                "slow_down",
                f"too many failed sign-ins for this client from this address; retry in {wait:.0f} s",
                ((b"retry-after", str(int(wait) + 1).encode()),),
            )
        row = self.store.key_row(client_id) if len(secret) <= MAX_CREDENTIAL else None
        matches = await asyncio.to_thread(secret_matches, row, secret[:MAX_CREDENTIAL])
        token = self.store.issue_for_key_id(row[0], self.settings.token_ttl) if row and matches else None
        if token is None:
            self.throttle.failed(key)
            log.warning("refused a sign-in with a wrong or deleted API key from %s", _peer(scope))
            raise OAuthError(
                401,
                "invalid_client",
                "the API key is wrong or was deleted; ask the service's owner for a new one"
                " (flyte-run-widget api-key create NAME)",
                ((b"www-authenticate", b'Basic realm="flyte-run-widget"'),),
            )
        self.throttle.succeeded(key)
        log.info("API key %r signed in from %s", client_id, _peer(scope))
        return token

    def _check_public_client(self, scope: dict[str, Any], form: dict[str, str]) -> None:
        basic = _basic(scope)
        client_id = basic[0] if basic else form.get("client_id", "")
        if client_id != self.settings.client_id:
            raise OAuthError(
                401,
                "invalid_client",
                f"device logins use the public client id {self.settings.client_id!r} (GetPublicClientConfig)",
            )

    def _device_grant(self, form: dict[str, str]) -> str:
        # The SDK's poll sends client_id in the form; its value is checked with the grant.
        if form.get("client_id", "") != self.settings.client_id:
            raise OAuthError(
                401, "invalid_client", f"device logins use the public client id {self.settings.client_id!r}"
            )
        device_code = form.get("device_code", "")
        if not device_code or len(device_code) > MAX_CREDENTIAL:
            raise OAuthError(400, "invalid_request", "the device grant needs the device_code it was given")
        state, token = self.store.poll_device(device_code, self.settings.token_ttl)
        if state is DeviceState.APPROVED and token is not None:
            return token
        text = {
            DeviceState.PENDING: "the owner has not approved this login yet; keep polling",
            DeviceState.SLOW_DOWN: "polled sooner than the interval; wait 5 s longer between polls",
            DeviceState.EXPIRED: "the device code expired before it was approved; start a new login",
            DeviceState.DENIED: "the service's owner denied this login",
            DeviceState.UNKNOWN: "the device code is not one this service gave, or was used already",
        }
        if state not in text:  # APPROVED without a token: the login was cleared meanwhile
            state = DeviceState.UNKNOWN
        raise OAuthError(400, state.value, text[state])

    async def device_authorization(self, scope: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        self._check_public_client(scope, form)
        self._audience(form)
        login = self.store.start_device(self.settings.device_expires, self.settings.device_interval)
        if login is None:
            raise OAuthError(429, "slow_down", "too many device logins are pending; retry in a minute")
        base = base_url(scope.get("headers", ()), self.tls, self.fallback_host)
        # Not the device code: that one is the caller's secret until it is exchanged.
        log.warning(
            "device login %s pending (from %s): approve it with: flyte-run-widget auth approve %s",
            login.user_code,
            _peer(scope),
            login.user_code,
        )
        return {
            "device_code": login.device_code,
            "user_code": login.user_code,
            "verification_uri": base + VERIFICATION_PATH,
            "verification_uri_complete": f"{base}{VERIFICATION_PATH}?user_code={login.user_code}",
            "expires_in": login.expires_in,
            "interval": login.interval,
        }

    async def verification_page(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Plain text (never markup): what to tell the service's owner."""
        query = dict(parse_qsl(bytes(scope.get("query_string", b"")).decode("latin-1")[:256]))
        code = normalize_user_code(query.get("user_code", ""))
        shown = f"{code[:4]}-{code[4:]}" if len(code) == 8 and code.isalpha() else "USER-CODE"
        text = (
            "This Run service signs devices in when its owner approves them.\n"
            f"Ask the owner to run: flyte-run-widget auth approve {shown}\n"
        )
        await _respond(send, 200, text.encode(), b"text/plain; charset=utf-8")

    async def well_known(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        base = base_url(scope.get("headers", ()), self.tls, self.fallback_host)
        await _json(send, 200, metadata(base, self.settings))
