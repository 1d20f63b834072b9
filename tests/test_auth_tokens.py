"""Tokens from a real OAuth2 token endpoint on loopback (tests/oauth_support.py): the request the
SDK would make, the header discovery names, one request for many callers, device flow, the token
command, and clear errors (without secrets) for every bad answer."""

from __future__ import annotations

import asyncio
import base64
import logging
import sys
import time
from typing import Any
from urllib.parse import quote_plus

import pytest
from oauth_support import TokenServer, issue

from flyte_run_widget.client import auth, sign_in
from flyte_run_widget.client.auth import Discovery, TokenSource
from flyte_run_widget.client.credentials import Credentials
from flyte_run_widget.errors import AuthenticationError, SignInError

SECRET = "top+secret/value="
CLIENT = Credentials("ClientSecret", "app", SECRET, scopes=("all",), source="test")


def source(server: TokenServer, creds: Credentials = CLIENT, **found: Any) -> TokenSource:
    discovery = Discovery(token_endpoint=server.url("/token"), **found)

    async def discover() -> Discovery:
        return discovery

    return TokenSource(creds, discover, endpoint="svc.example:443")


def test_client_credentials_request_is_the_sdks_and_header_is_discoverys() -> None:
    with TokenServer() as server:
        server.answers["/token"] = [(200, issue())]
        tokens = source(server, audience="aud", header="flyte-authorization")
        assert asyncio.run(tokens.header()) == ("flyte-authorization", "Bearer tok-1")
        (seen,) = server.seen("/token")
        assert seen.form == {"grant_type": "client_credentials", "scope": "all", "audience": "aud"}
        basic = base64.b64encode(f"app:{quote_plus(SECRET)}".encode()).decode()
        assert seen.headers["authorization"] == f"Basic {basic}"
        # No header named by discovery: the default one.
        assert asyncio.run(source(server).header())[0] == "authorization"


def test_fifty_callers_across_an_expiry_make_one_token_request() -> None:
    async def main(server: TokenServer) -> list[tuple[str, str]]:
        tokens = source(server)
        first = await tokens.header()
        assert first[1] == "Bearer tok-1"
        token = tokens._token
        assert token is not None
        while token.fresh():  # expires_in 1 s: renewed from 0.9 s on
            await asyncio.sleep(0.02)
        return await asyncio.gather(*(tokens.header() for _ in range(50)))

    with TokenServer(delay=0.3) as server:
        server.answers["/token"] = [(200, issue(expires_in=1))]
        headers = asyncio.run(main(server))
        assert len(server.seen("/token")) == 2
        assert {h[1] for h in headers} == {"Bearer tok-2"}


def test_a_slow_answer_does_not_stretch_the_tokens_life() -> None:
    """The endpoint counts expires_in from when it issued the token; an answer that takes long
    to arrive (a loaded machine) must not make the client use the token past that, or the
    service refuses it once before every renewal."""
    with TokenServer(delay=0.5) as server:
        server.answers["/token"] = [(200, issue(expires_in=3))]
        tokens = source(server)
        asyncio.run(tokens.header())
        (seen,) = server.seen("/token")
    token = tokens._token
    assert token is not None and token.expires_at is not None and token.renew_at is not None
    # seen.at: when the endpoint took the request, before it issued the token and answered.
    assert token.expires_at <= seen.at + 3
    assert token.renew_at <= seen.at + 3 - 0.3


def test_invalidate_renews_once_for_many_refusals() -> None:
    async def main(server: TokenServer) -> set[str]:
        tokens = source(server)
        _, old = await tokens.header()
        for _ in range(20):  # twenty calls refused with the same token
            tokens.invalidate(old)
        renewed = await asyncio.gather(*(tokens.header() for _ in range(20)))
        tokens.invalidate(old)  # a late refusal of the old token does not throw away the new one
        return {v for _, v in renewed} | {(await tokens.header())[1]}

    with TokenServer(delay=0.2) as server:
        server.answers["/token"] = [(200, issue())]
        assert asyncio.run(main(server)) == {"Bearer tok-2"}
        assert len(server.seen("/token")) == 2


GARBAGE = [
    ((200, "<html>login</html>"), "did not give a token"),
    ((200, {"token_type": "Bearer"}), "without a usable access_token"),
    ((200, {"access_token": "a\r\nx-evil: 1"}), "without a usable access_token"),
    ((401, {"error": "invalid_client", "error_description": f"bad secret {SECRET}"}), "wrong, deleted"),
    ((500, "oops"), "did not give a token"),
    ((400, {"error": "invalid_scope"}), "admin.scopes"),
]


@pytest.mark.parametrize("answer, says", GARBAGE)
def test_bad_token_answers_are_clear_errors_without_the_secret(
    answer: tuple[int, Any], says: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with TokenServer() as server:
        server.answers["/token"] = [answer]
        with pytest.raises(SignInError, match=says) as info:
            asyncio.run(source(server).header())
    error = info.value
    assert isinstance(error, AuthenticationError)
    # A failed request keeps its cause; a token answer without a token had none.
    assert error.__cause__ is not None or "access_token" in says
    assert "svc.example:443" in str(error)
    for text in (str(error), error.details, caplog.text):
        assert SECRET not in text and quote_plus(SECRET) not in text


def test_discovery_must_name_a_usable_token_endpoint() -> None:
    async def found(url: str) -> None:
        async def discover() -> Discovery:
            return Discovery(token_endpoint=url)

        await TokenSource(CLIENT, discover, endpoint="svc.example:443").header()

    with pytest.raises(SignInError, match="names no token endpoint"):
        asyncio.run(found(""))
    with pytest.raises(SignInError, match="clear text"):
        asyncio.run(found("http://idp.example.com/token"))
    with pytest.raises(SignInError, match="not an http"):
        asyncio.run(found("javascript:alert(1)"))


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses a device sign-in asks for, recorded; each is taken short so the test is quick."""
    asked: list[float] = []

    async def pause(seconds: float) -> None:
        asked.append(seconds)
        await asyncio.sleep(0.01)

    monkeypatch.setattr(auth, "poll_pause", pause)
    return asked


def device_server(server: TokenServer, outcome: tuple[int, Any]) -> None:
    server.answers["/device"] = [
        (
            200,
            {
                "device_code": "DEVICE-SECRET",
                "user_code": "ABCD-EFGH",
                "verification_uri": "https://svc.example/device?x=1",
                "expires_in": 600,
                "interval": 2,
            },
        )
    ]
    server.answers["/token"] = [
        (400, {"error": "authorization_pending"}),
        (400, {"error": "slow_down"}),
        (400, {"error": "authorization_pending"}),
        outcome,
    ]


def test_device_flow_shows_link_and_code_polls_at_the_interval_and_slows_down(pauses: list[float]) -> None:
    shown: list[sign_in.SignInPrompt | None] = []
    remove = sign_in.add_listener(shown.append)
    try:
        with TokenServer() as server:
            device_server(server, (200, issue()))
            creds = Credentials("DeviceFlow", source="test")
            device = server.url("/device")
            tokens = source(server, creds, device_authorization_endpoint=device, client_id="pub")
            assert asyncio.run(tokens.header()) == ("authorization", "Bearer tok-1")
            (start,) = server.seen("/device")
            polls = server.seen("/token")
    finally:
        remove()
    assert start.form["client_id"] == "pub"
    assert [p.form["grant_type"] for p in polls] == [auth.DEVICE_GRANT] * 4
    assert {p.form["device_code"] for p in polls} == {"DEVICE-SECRET"}
    assert pauses == [2, 2, 7, 7]  # the service's interval, 5 s more after slow_down
    assert shown[0] is not None and shown[0].code == "ABCD-EFGH"
    assert shown[0].url == "https://svc.example/device?x=1&user_code=ABCD-EFGH"
    assert "DEVICE-SECRET" not in shown[0].text
    assert shown[1:] == [None] and sign_in.current() is None


def test_device_flow_denied_is_a_clear_error(pauses: list[float]) -> None:
    with TokenServer() as server:
        device_server(server, (400, {"error": "access_denied"}))
        tokens = source(
            server, Credentials("DeviceFlow"), device_authorization_endpoint=server.url("/device")
        )
        with pytest.raises(SignInError, match="denied"):
            asyncio.run(tokens.header())
    assert sign_in.current() is None


def test_device_flow_garbage_start_is_a_clear_error(pauses: list[float]) -> None:
    with TokenServer() as server:
        start = {"device_code": "d", "user_code": "u", "verification_uri": "file:///x"}
        server.answers["/device"] = [(200, start)]
        device = server.url("/device")
        tokens = source(server, Credentials("DeviceFlow"), device_authorization_endpoint=device)
        with pytest.raises(SignInError, match="not an http"):
            asyncio.run(tokens.header())
        server.answers["/device"] = [(200, "<html>")]
        with pytest.raises(SignInError, match="did not answer usably"):
            asyncio.run(tokens.header())
        tokens = source(server, Credentials("DeviceFlow"))
        with pytest.raises(SignInError, match="no device authorization endpoint"):
            asyncio.run(tokens.header())


def test_external_command_token_and_failure() -> None:
    async def nothing() -> Discovery:
        raise AssertionError("a token command needs no discovery")

    printer = Credentials("ExternalCommand", command=(sys.executable, "-c", "print('cmd-token')"))
    tokens = TokenSource(printer, nothing, endpoint="svc.example:443")
    assert asyncio.run(tokens.header()) == ("authorization", "Bearer cmd-token")
    failing = Credentials("ExternalCommand", command=(sys.executable, "-c", "import sys; sys.exit(3)"))
    with pytest.raises(SignInError, match="exited with 3"):
        asyncio.run(TokenSource(failing, nothing, endpoint="svc.example:443").header())
    missing = Credentials("ExternalCommand", command=("/nonexistent/get-token",))
    with pytest.raises(SignInError, match="could not run"):
        asyncio.run(TokenSource(missing, nothing, endpoint="svc.example:443").header())


def test_token_reprs_and_logs_hold_no_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with TokenServer() as server:
        server.answers["/token"] = [(200, {"access_token": "TOKEN-VALUE", "expires_in": 60})]
        tokens = source(server)
        asyncio.run(tokens.header())
    assert "TOKEN-VALUE" not in repr(tokens) + repr(tokens._token) + caplog.text
    assert SECRET not in repr(tokens) + caplog.text
    assert tokens._token is not None and tokens._token.expires_at is not None
    assert tokens._token.expires_at - time.monotonic() <= 60


def test_pkce_takes_the_code_from_the_browser_redirect(monkeypatch: pytest.MonkeyPatch) -> None:
    """The browser is played by a thread that follows the login page's redirect to the loopback
    port the kernel listens on, as a real one would after the person signed in."""
    import base64 as b64
    import hashlib
    import socket
    import threading
    import urllib.request
    import webbrowser
    from urllib.parse import parse_qs, urlencode, urlsplit

    with socket.socket() as probe:  # a free port for the redirect
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    redirect = f"http://127.0.0.1:{port}/callback"
    opened: list[dict[str, list[str]]] = []

    def browser(url: str) -> bool:
        query = parse_qs(urlsplit(url).query)
        opened.append(query)
        forged = f"{redirect}?{urlencode({'code': 'FORGED', 'state': 'guessed'})}"
        back = f"{redirect}?{urlencode({'code': 'AUTH-CODE', 'state': query['state'][0]})}"

        def follow() -> None:
            # Another page on this machine tries its own code first: its state is wrong.
            urllib.request.urlopen(forged, timeout=30).read()
            urllib.request.urlopen(back, timeout=30).read()

        threading.Thread(target=follow).start()
        return True

    monkeypatch.setattr(webbrowser, "open", browser)
    with TokenServer() as server:
        server.answers["/token"] = [(200, issue())]
        tokens = source(
            server,
            Credentials("Pkce"),
            authorization_endpoint="https://svc.example/authorize",
            client_id="pub",
            redirect_uri=redirect,
        )
        assert asyncio.run(tokens.header()) == ("authorization", "Bearer tok-1")
        (seen,) = server.seen("/token")
    (query,) = opened
    assert query["client_id"] == ["pub"] and query["code_challenge_method"] == ["S256"]
    form = seen.form
    assert (form["grant_type"], form["code"], form["redirect_uri"]) == (
        "authorization_code",
        "AUTH-CODE",
        redirect,
    )
    digest = hashlib.sha256(form["code_verifier"].encode()).digest()
    assert query["code_challenge"] == [b64.urlsafe_b64encode(digest).rstrip(b"=").decode()]


def test_pkce_refuses_a_redirect_it_cannot_take() -> None:
    with TokenServer() as server:
        tokens = source(
            server,
            Credentials("Pkce"),
            authorization_endpoint="https://svc.example/authorize",
            redirect_uri="https://elsewhere.example/callback",
        )
        with pytest.raises(SignInError, match="DeviceFlow"):
            asyncio.run(tokens.header())
