"""OAuth2 tokens for a Flyte service, got the way the flyte SDK gets them: discovery through
``AuthMetadataService`` (over the client's own transport), then the token endpoint over HTTP with
authlib's httpx client: client credentials, device authorization (RFC 8628), PKCE, or an external
command. One ``TokenSource`` per client serves every channel (control plane and data plane).

    tokens = TokenSource(config.credentials, discover, endpoint="flyte.example.com:443")
    key, value = await tokens.header()     # ("authorization", "Bearer ...")
    tokens.invalidate(value)               # after UNAUTHENTICATED: the next header() refreshes

Concurrent ``header()`` calls while a token is being fetched wait for that one request.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urljoin, urlsplit

from ..common.net import is_loopback_host
from ..errors import SignInError
from .credentials import Credentials

logger = logging.getLogger(__name__)

DEFAULT_HEADER = "authorization"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
HTTP_TIMEOUT = 30.0
# RFC 8628 3.5: on slow_down the interval grows by 5 s; 5 s is also its default interval.
SLOW_DOWN_STEP = 5.0
DEFAULT_INTERVAL = 5.0
# A token is renewed this long before it expires, at most a tenth of its life.
RENEW_MARGIN = 60.0


@dataclass(frozen=True)
class Discovery:
    """What ``GetOAuth2Metadata`` and ``GetPublicClientConfig`` say."""

    token_endpoint: str
    authorization_endpoint: str = ""
    device_authorization_endpoint: str = ""
    client_id: str = ""
    redirect_uri: str = ""
    scopes: tuple[str, ...] = ()
    audience: str = ""
    header: str = DEFAULT_HEADER

    @classmethod
    def from_responses(cls, metadata: Any, public: Any) -> Discovery:
        return cls(
            token_endpoint=metadata.token_endpoint,
            authorization_endpoint=metadata.authorization_endpoint,
            device_authorization_endpoint=metadata.device_authorization_endpoint,
            client_id=public.client_id,
            redirect_uri=public.redirect_uri,
            scopes=tuple(public.scopes),
            audience=public.audience,
            header=(public.authorization_metadata_key or DEFAULT_HEADER).lower(),
        )


@dataclass
class Token:
    value: str = field(repr=False)
    expires_at: float | None  # time.monotonic(); None: until the service refuses it
    renew_at: float | None
    refresh_token: str = field(default="", repr=False)

    def fresh(self) -> bool:
        return self.renew_at is None or time.monotonic() < self.renew_at


class TokenSource:
    def __init__(
        self,
        credentials: Credentials,
        discover: Callable[[], Awaitable[Discovery]],
        *,
        endpoint: str,
        verify: ssl.SSLContext | bool = True,
        base_url: str = "",
    ) -> None:
        self.credentials = credentials
        self._discover = discover
        self.endpoint = endpoint  # for messages
        self._verify = verify
        self._base_url = base_url  # relative endpoints in discovery are resolved against it
        self._discovery: Discovery | None = None
        self._token: Token | None = None
        self._lock: asyncio.Lock | None = None
        #: Token requests made (each a POST to the token endpoint or a run of the command).
        self.requests = 0

    def __repr__(self) -> str:
        return f"TokenSource({self.credentials.auth_type} for {self.endpoint})"

    async def discovery(self) -> Discovery:
        if self._discovery is None:
            self._discovery = await self._discover()
        return self._discovery

    async def header(self) -> tuple[str, str]:
        token = self._token
        if token is None or not token.fresh():
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                token = self._token
                if token is None or not token.fresh():
                    token = self._token = await self._renew(token)
        header = self._discovery.header if self._discovery is not None else DEFAULT_HEADER
        return header, f"Bearer {token.value}"

    def invalidate(self, value: str) -> None:
        """The service refused ``value`` (a header value header() gave): renew on the next call,
        unless another caller already did."""
        token = self._token
        if token is not None and value == f"Bearer {token.value}":
            token.renew_at = token.expires_at = 0.0

    # -- getting a token --------------------------------------------------------------------

    async def _renew(self, old: Token | None) -> Token:
        creds = self.credentials
        if creds.auth_type == "ExternalCommand":
            return await self._command()
        found = await self.discovery()
        if creds.auth_type == "ClientSecret":
            return await self._client_credentials(found)
        if old is not None and old.refresh_token:
            try:
                return await self._refresh(found, old.refresh_token)
            except SignInError as e:
                logger.info("refreshing the token failed (%s); signing in again", e)
        if creds.auth_type == "DeviceFlow":
            from .device_flow import device_sign_in

            return await device_sign_in(self, found)
        from .pkce_flow import pkce_sign_in

        return await pkce_sign_in(self, found)

    def url(self, endpoint: str, what: str) -> str:
        """An endpoint from discovery, absolute; a secret goes nowhere but over TLS or loopback."""
        if not endpoint:
            raise SignInError(
                f"the service at {self.endpoint} names no {what} in its OAuth2 metadata; it may not"
                f" support {self.credentials.auth_type} sign-in: ask its admin which admin.authType to use",
                code="UNAUTHENTICATED",
            )
        url = urljoin(self._base_url, endpoint) if self._base_url else endpoint
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SignInError(
                f"the service at {self.endpoint} names {what} {_short(url)!r}, which is not an http(s) URL;"
                " its auth settings are wrong: tell its admin",
                code="UNAUTHENTICATED",
            )
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise SignInError(
                f"refusing to send credentials in clear text to the {what} {_short(url)!r} named by"
                f" {self.endpoint}; the service must name an https:// URL",
                code="UNAUTHENTICATED",
            )
        return url

    def oauth(self, client_id: str, secret: str | None = None, **kwargs: Any) -> Any:
        from authlib.integrations.httpx_client import AsyncOAuth2Client

        return AsyncOAuth2Client(
            client_id=client_id,
            # The SDK quotes the secret before Basic encoding (token_client.get_basic_authorization_header);
            # services that follow it expect the same.
            client_secret=quote_plus(secret) if secret else None,
            token_endpoint_auth_method="client_secret_basic" if secret else "none",
            verify=self._verify,
            timeout=HTTP_TIMEOUT,
            trust_env=False,
            **kwargs,
        )

    def extras(self, found: Discovery) -> dict[str, str]:
        scopes = self.credentials.scopes or found.scopes
        out = {"scope": " ".join(scopes)} if scopes else {}
        if found.audience:
            out["audience"] = found.audience
        return out

    async def _client_credentials(self, found: Discovery) -> Token:
        creds = self.credentials
        url = self.url(found.token_endpoint, "token endpoint")
        async with self.oauth(creds.client_id, creds.client_secret) as client:
            return await self.fetch(client, url, grant_type="client_credentials", **self.extras(found))

    async def _refresh(self, found: Discovery, refresh_token: str) -> Token:
        url = self.url(found.token_endpoint, "token endpoint")
        async with self.oauth(self.credentials.client_id or found.client_id) as client:
            return await self.fetch(
                client, url, grant_type="refresh_token", refresh_token=refresh_token, **self.extras(found)
            )

    async def fetch(self, client: Any, url: str, **form: str) -> Token:
        """POST the token request; a Token, or SignInError naming the cause (never the secret,
        never the body the endpoint sent, which may echo it)."""
        from authlib.integrations.base_client.errors import OAuthError

        self.requests += 1
        # The service counts expires_in from when it issued the token, which is after we sent
        # the request but may be well before its answer reaches us (a loaded machine, a slow
        # network): counted from the answer's arrival, the token would be used past its end
        # and refused once before every renewal.
        sent = time.monotonic()
        try:
            answer = await client.fetch_token(url, **form)
        except OAuthError as e:
            raise self.refused(e) from e
        except Exception as e:  # httpx2's transport errors, a body that is not JSON, ...
            raise SignInError(
                f"the token endpoint {_short(url)} of {self.endpoint} did not give a token"
                f" ({type(e).__name__}: {self.scrub(str(e))}); check that the service is up and that"
                " its token endpoint is reachable from here",
                code="UNAUTHENTICATED",
            ) from e
        return self.token_from(answer, url, sent)

    def token_from(self, answer: Any, url: str, sent: float) -> Token:
        """The token in ``answer`` to a request sent at ``sent`` (time.monotonic())."""
        value = answer.get("access_token") if isinstance(answer, dict) else None
        expires_in = answer.get("expires_in") if isinstance(answer, dict) else None
        if not isinstance(value, str) or not value or any(c in value for c in "\r\n"):
            raise SignInError(
                f"the token endpoint {_short(url)} of {self.endpoint} answered without a usable"
                " access_token; the service's token endpoint is misconfigured: tell its admin",
                code="UNAUTHENTICATED",
            )
        expires_at: float | None
        renew_at: float | None
        if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) and expires_in > 0:
            life = float(expires_in)
            expires_at, renew_at = sent + life, sent + life - min(RENEW_MARGIN, life / 10)
        else:
            expires_at = renew_at = None
        refresh = answer.get("refresh_token")
        logger.info("got a token for %s (expires in %s s)", self.endpoint, expires_in)
        return Token(value, expires_at, renew_at, refresh if isinstance(refresh, str) else "")

    def refused(self, e: Any) -> SignInError:
        error = self.scrub(str(getattr(e, "error", "") or "error"))
        description = self.scrub(str(getattr(e, "description", "") or ""))
        detail = f"{error}: {description}" if description else error
        fix = {
            "invalid_client": "the client id or secret (API key) is wrong, deleted or expired: get a new one",
            "unauthorized_client": "this client may not use this kind of sign-in: ask the service's admin",
            "invalid_scope": "admin.scopes asks for scopes the service does not grant: fix or drop them",
            "access_denied": "the sign-in was denied: sign in again and approve it",
            "expired_token": "the code expired before it was approved: sign in again",
        }.get(error, "check the credentials (API key, admin.clientId and secret) and try again")
        return SignInError(
            f"the service at {self.endpoint} refused to sign us in ({detail}); {fix}",
            code="UNAUTHENTICATED",
            details=detail,
        )

    def scrub(self, text: str) -> str:
        """``text`` (from the network) without our secret and cut short."""
        secret = self.credentials.client_secret
        if secret:
            text = text.replace(secret, "***").replace(quote_plus(secret), "***")
        return _short(text)

    async def _command(self) -> Token:
        argv = self.credentials.command
        self.requests += 1
        fix = f"run the token command ({argv[0]} ...) in a terminal to see why"
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
            )
            out, _ = await asyncio.wait_for(process.communicate(), HTTP_TIMEOUT)
        except (OSError, TimeoutError) as e:
            raise SignInError(
                f"the token command for {self.endpoint} could not run ({type(e).__name__}); {fix}",
                code="UNAUTHENTICATED",
            ) from e
        value = out.decode("utf-8", "replace").strip()
        if process.returncode != 0 or not value or any(c.isspace() for c in value):
            raise SignInError(
                f"the token command for {self.endpoint} exited with {process.returncode} and"
                f" {'no' if not value else 'an unusable'} token on its output; {fix}",
                code="UNAUTHENTICATED",
            )
        return Token(value, None, None)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ssl_context(ca_pem: bytes | None) -> ssl.SSLContext | bool:
    if ca_pem is None:
        return True
    return ssl.create_default_context(cadata=ca_pem.decode("ascii", "replace"))


async def poll_pause(seconds: float) -> None:
    """The pause between two polls of a device sign-in (the interval the service asks for)."""
    await asyncio.sleep(seconds)


__all__ = ["DEFAULT_HEADER", "Discovery", "Token", "TokenSource", "poll_pause", "ssl_context"]
