"""Device authorization (RFC 8628), for a kernel on another machine than the browser: the service
gives a link and a short code, the person approves them anywhere, we poll the token endpoint at the
interval the service asks for until they did.

    token = await device_sign_in(tokens, discovery)
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import SignInError
from . import auth, sign_in

if TYPE_CHECKING:
    from .auth import Discovery, Token, TokenSource

logger = logging.getLogger(__name__)


async def device_sign_in(tokens: TokenSource, found: Discovery) -> Token:
    from authlib.integrations.base_client.errors import OAuthError

    client_id = tokens.credentials.client_id or found.client_id
    device_url = tokens.url(found.device_authorization_endpoint, "device authorization endpoint")
    token_url = tokens.url(found.token_endpoint, "token endpoint")
    async with tokens.oauth(client_id) as client:
        start = await _start(tokens, client, device_url, {"client_id": client_id, **tokens.extras(found)})
        link = start["verification_uri_complete"] or _with_code(start["verification_uri"], start["user_code"])
        deadline = time.monotonic() + start["expires_in"]
        interval = start["interval"]
        sign_in.announce(sign_in.SignInPrompt(tokens.endpoint, link, start["user_code"]))
        try:
            while True:
                await auth.poll_pause(interval)
                if time.monotonic() > deadline:
                    raise SignInError(
                        f"the sign-in code for {tokens.endpoint} expired before it was approved;"
                        " call again to get a new code",
                        code="UNAUTHENTICATED",
                    )
                try:
                    return await tokens.fetch(
                        client, token_url, grant_type=auth.DEVICE_GRANT, device_code=start["device_code"]
                    )
                except SignInError as e:
                    cause = e.__cause__
                    error = getattr(cause, "error", "") if isinstance(cause, OAuthError) else ""
                    if error == "authorization_pending":
                        continue
                    if error == "slow_down":
                        interval += auth.SLOW_DOWN_STEP
                        logger.info("the service asks to poll more slowly: every %g s", interval)
                        continue
                    raise
        finally:
            sign_in.answered()


async def _start(tokens: TokenSource, client: Any, url: str, form: dict[str, str]) -> dict[str, Any]:
    tokens.requests += 1
    try:
        response = await client.request(
            "POST", url, data=form, withhold_token=True, headers={"Accept": "application/json"}
        )
        body = response.json() if response.status_code == 200 else None
    except Exception as e:  # transport errors, a body that is not JSON
        raise SignInError(
            f"the device authorization endpoint of {tokens.endpoint} did not answer usably"
            f" ({type(e).__name__}); check that the service is up and supports DeviceFlow",
            code="UNAUTHENTICATED",
        ) from e
    if body is None:
        raise SignInError(
            f"the device authorization endpoint of {tokens.endpoint} answered HTTP {response.status_code};"
            " check admin.clientId and that the service supports DeviceFlow",
            code="UNAUTHENTICATED",
        )
    try:
        out = {
            "device_code": _text(body, "device_code"),
            "user_code": _text(body, "user_code"),
            "verification_uri": _text(body, "verification_uri"),
            "verification_uri_complete": _text(body, "verification_uri_complete", required=False),
            "expires_in": _number(body, "expires_in", 600.0),
            "interval": _number(body, "interval", auth.DEFAULT_INTERVAL),
        }
    except (KeyError, TypeError, ValueError) as e:
        raise SignInError(
            f"the device authorization endpoint of {tokens.endpoint} answered without {e}; the service's"
            " DeviceFlow support is broken: tell its admin",
            code="UNAUTHENTICATED",
        ) from e
    for name in ("verification_uri", "verification_uri_complete"):
        if out[name] and urlsplit(str(out[name])).scheme not in ("http", "https"):
            raise SignInError(
                f"the device authorization endpoint of {tokens.endpoint} gave a {name} that is not an"
                " http(s) link; tell the service's admin",
                code="UNAUTHENTICATED",
            )
    return out


def _text(body: Any, name: str, required: bool = True) -> str:
    value = body.get(name) if isinstance(body, dict) else None
    if isinstance(value, str) and value and len(value) < 2048:
        return value
    if required:
        raise KeyError(name)
    return ""


def _number(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 86400:
        raise ValueError(f"a usable {name}")
    return float(value)


def _with_code(uri: str, code: str) -> str:
    """The SDK's link when the service sends no verification_uri_complete: ?user_code= added to
    the query the URI may already have."""
    parts = urlsplit(uri)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("user_code", code)]
    return urlunsplit(parts._replace(query=urlencode(query)))
