"""Authorization code with PKCE (RFC 7636), for a kernel whose machine has the browser: the
service's login page redirects to ``redirect_uri`` (a loopback port this process listens on),
which brings the code back.

    token = await pkce_sign_in(tokens, discovery)
"""

from __future__ import annotations

import asyncio
import secrets
import webbrowser
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from ..common.net import is_loopback_host
from ..errors import SignInError
from . import sign_in

if TYPE_CHECKING:
    from .auth import Discovery, Token, TokenSource

#: How long the login page may take.
LOGIN_TIMEOUT = 300.0
_PAGE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
    b"Signed in; you can close this tab.\n"
)


async def pkce_sign_in(tokens: TokenSource, found: Discovery) -> Token:
    client_id = tokens.credentials.client_id or found.client_id
    authorize = tokens.url(found.authorization_endpoint, "authorization endpoint")
    token_url = tokens.url(found.token_endpoint, "token endpoint")
    redirect = urlsplit(found.redirect_uri)
    if redirect.scheme != "http" or not redirect.hostname or not is_loopback_host(redirect.hostname):
        raise SignInError(
            f"the service at {tokens.endpoint} redirects sign-ins to {found.redirect_uri!r}, which is"
            " not a loopback address this kernel can listen on; use admin.authType: DeviceFlow",
            code="UNAUTHENTICATED",
        )
    verifier = secrets.token_urlsafe(48)
    codes: asyncio.Queue[dict[str, list[str]]] = asyncio.Queue()

    async def callback(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            target = line.split(b" ")[1].decode("ascii", "replace") if line.count(b" ") >= 2 else ""
            if urlsplit(target).path == (redirect.path or "/"):
                await codes.put(parse_qs(urlsplit(target).query))
            writer.write(_PAGE)
            await writer.drain()
        except (OSError, TimeoutError):
            pass
        finally:
            writer.close()

    try:
        server = await asyncio.start_server(callback, redirect.hostname, redirect.port or 80)
    except OSError as e:
        raise SignInError(
            f"cannot listen on {found.redirect_uri} for the sign-in's redirect ({e.strerror}); close"
            " whatever uses that port, or use admin.authType: DeviceFlow",
            code="UNAUTHENTICATED",
        ) from e
    oauth = tokens.oauth(client_id, redirect_uri=found.redirect_uri, code_challenge_method="S256")
    async with server, oauth as c:
        extras = tokens.extras(found)
        url, state = c.create_authorization_url(authorize, code_verifier=verifier, **extras)
        sign_in.announce(sign_in.SignInPrompt(tokens.endpoint, url, ""))
        try:
            await asyncio.to_thread(webbrowser.open, url)
            async with asyncio.timeout(LOGIN_TIMEOUT):
                while True:
                    query = await codes.get()
                    if query.get("state", [""])[0] == state:
                        break
        except TimeoutError as e:
            raise SignInError(
                f"no sign-in came back from the browser for {tokens.endpoint} within {LOGIN_TIMEOUT:g} s;"
                " call again, or use admin.authType: DeviceFlow on a remote machine",
                code="UNAUTHENTICATED",
            ) from e
        finally:
            sign_in.answered()
        if "code" not in query:
            error = tokens.scrub(query.get("error", ["no code"])[0])
            raise SignInError(
                f"the sign-in to {tokens.endpoint} failed in the browser ({error}); sign in again",
                code="UNAUTHENTICATED",
            )
        return await tokens.fetch(
            c,
            token_url,
            grant_type="authorization_code",
            code=query["code"][0],
            code_verifier=verifier,
            redirect_uri=found.redirect_uri,
        )
