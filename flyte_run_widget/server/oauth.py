"""Signing in the way Flyte does (``serve --auth``): discovery through
``flyteidl2.auth.AuthMetadataService``, then an OAuth2 token endpoint for client credentials (API
keys) and device logins (RFC 8628); ``OAuthGate`` checks the access token on every other call.

    settings = OAuthSettings(token_ttl=3600)
    gate = OAuthGate(store, settings)               # Door(..., gate=gate)
    routes = oauth_routes(store, settings, tls=True) # Door(..., routes=routes)

Paths: ``POST /oauth2/token``, ``POST /oauth2/device/authorize``, ``GET /oauth2/device`` (what a
person who opens the verification link reads), ``GET /.well-known/oauth-authorization-server``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flyteidl2.auth import auth_service_pb2 as au

from .auth_store import AuthStore, TokenState

TOKEN_PATH = "/oauth2/token"
DEVICE_AUTHORIZATION_PATH = "/oauth2/device/authorize"
VERIFICATION_PATH = "/oauth2/device"
WELL_KNOWN_PATH = "/.well-known/oauth-authorization-server"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: Longest credential looked at: ours are 47 characters; a longer one is refused unread.
MAX_CREDENTIAL = 512
_AUTHORITY = re.compile(r"[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")


@dataclass(frozen=True)
class OAuthSettings:
    token_ttl: float = 3600.0
    #: Seconds past expiry a token is still taken (clients with clocks behind refresh late).
    leeway: float = 60.0
    device_interval: int = 5
    device_expires: int = 600
    #: The public client that device logins name (GetPublicClientConfig.client_id).
    client_id: str = "flyte-run-widget"
    audience: str = "flyte-run-widget"
    #: The header clients send the token in (Union's name); ``authorization`` is taken too.
    header: str = "flyte-authorization"
    scopes: tuple[str, ...] = ("all",)


def base_url(headers: Any, tls: bool, fallback: str) -> str:
    """``https://host[:port]`` as the caller reached this service (its Host header, if it is
    a plain host and port; else ``fallback``)."""
    host = ""
    for key, value in headers:
        name = key.decode("latin-1").lower() if isinstance(key, bytes) else str(key).lower()
        if name in ("host", ":authority"):
            host = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            break
    if not _AUTHORITY.fullmatch(host):
        host = fallback
    scheme = "https" if tls else "http"
    host = host.removesuffix(":443") if tls else host.removesuffix(":80")
    return f"{scheme}://{host}"


_EXPIRED = (
    "the access token has expired: get a new one from the token endpoint (the flyte SDK and"
    " flyte_run_widget do so by themselves)"
)
_NO_TOKEN = (
    "this Run service signs clients in: send 'flyte-authorization: Bearer <access token>' from its"
    " token endpoint (flyte.init_from_api_key(key), a config with admin.authType ClientSecret or"
    " DeviceFlow, or flyte_run_widget.init(api_key=key)); ask its owner for an API key"
    " (flyte-run-widget api-key create NAME)"
)
_UNKNOWN = (
    "the access token is not valid here: it was revoked (its API key deleted), comes from another"
    " service, or is not a token; sign in again"
)


def bearer_credentials(headers: Any, names: tuple[bytes, ...]) -> list[bytes]:
    """Every ``Bearer`` credential in the headers ``names``, in header order."""
    found = []
    for key, value in headers:
        if key.lower() in names:
            scheme, _, credential = bytes(value).partition(b" ")
            if scheme.lower() == b"bearer":
                found.append(credential.strip())
    return found


class OAuthGate:
    """The Door's check: a call passes with a valid access token in ``flyte-authorization`` or
    ``authorization``; else the refusal says why (no token, expired, not valid here)."""

    def __init__(self, store: AuthStore, settings: OAuthSettings) -> None:
        self.store = store
        self.settings = settings
        self._names = tuple({settings.header.lower().encode(), b"authorization"})

    def refusal(self, scope: dict[str, Any]) -> str | None:
        credentials = bearer_credentials(scope.get("headers", ()), self._names)
        if not credentials:
            return _NO_TOKEN
        worst = TokenState.UNKNOWN
        for credential in credentials:
            if len(credential) > MAX_CREDENTIAL:
                continue
            state = self.store.check_token(credential.decode("latin-1"), self.settings.leeway)
            if state is TokenState.VALID:
                return None
            if state is TokenState.EXPIRED:
                worst = state
        return _EXPIRED if worst is TokenState.EXPIRED else _UNKNOWN


class AuthMetadataService:
    """``flyteidl2.auth.AuthMetadataService``: where to get a token and how to send it. Answered
    to anyone (it is how a client learns to sign in)."""

    def __init__(self, settings: OAuthSettings, tls: bool, fallback_host: str) -> None:
        self.settings = settings
        self.tls = tls
        self.fallback_host = fallback_host

    def _base(self, context: Any) -> str:
        request = getattr(context, "request", None)
        headers = request.request_headers().items() if request is not None else ()
        return base_url(headers, self.tls, self.fallback_host)

    async def GetOAuth2Metadata(self, request: Any, context: Any) -> au.GetOAuth2MetadataResponse:
        base = self._base(context)
        return au.GetOAuth2MetadataResponse(**metadata(base, self.settings))

    async def GetPublicClientConfig(self, request: Any, context: Any) -> au.GetPublicClientConfigResponse:
        s = self.settings
        return au.GetPublicClientConfigResponse(
            client_id=s.client_id,
            scopes=list(s.scopes),
            authorization_metadata_key=s.header,
            service_http_endpoint=self._base(context),
            audience=s.audience,
        )


def metadata(base: str, settings: OAuthSettings) -> dict[str, Any]:
    """RFC 8414 authorization server metadata (the fields GetOAuth2Metadata has)."""
    return {
        "issuer": base,
        "token_endpoint": base + TOKEN_PATH,
        "device_authorization_endpoint": base + DEVICE_AUTHORIZATION_PATH,
        "grant_types_supported": ["client_credentials", DEVICE_GRANT],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        "scopes_supported": list(settings.scopes),
        "response_types_supported": [],
    }
