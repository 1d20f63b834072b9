"""Hostile input to ``serve --auth``: form garbage and malformed client credentials at the token
endpoint, forged, foreign and oversized tokens, guessing. Each gets a clear error (RFC 6749 JSON at
the token endpoint, UNAUTHENTICATED on RPCs), none a crash or a way in, and the service keeps
answering; nothing a client sent as a secret comes back or reaches the service's output."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from auth_support import AuthService, assert_no_secret, details, parts

from flyte_run_widget.server.auth_store import AuthStore, DeviceState, TokenState
from flyte_run_widget.server.throttle import Throttle

LIST = "/flyteidl2.workflow.RunService/ListRuns"
SENT_SECRET = "s3cret-the-service-must-never-repeat-0123456789"
OAUTH_ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unsupported_grant_type",
    "invalid_target",
    "slow_down",
    "authorization_pending",
}


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthService]:
    service = AuthService(tmp_path_factory.mktemp("hostile"))
    try:
        yield service
    finally:
        output = service.stop()
        assert_no_secret(output, SENT_SECRET)
        # hypercorn may log its own TLS close after refusing a huge header; none of ours.
        assert "flyte_run_widget" not in output.split("listening on", 1)[1], output


def _basic(text: bytes) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(text).decode()}


FORM = {"content-type": "application/x-www-form-urlencoded"}


def _garbage(key_parts: list[str]) -> list[tuple[str, str, dict[str, str], bytes, str]]:
    """(what, method, headers, body, expected OAuth error)."""
    _, client_id, secret, _ = key_parts
    good = _basic(f"{client_id}:{secret}".encode())
    wrong = _basic(f"{client_id}:{SENT_SECRET}".encode())
    grant = b"grant_type=client_credentials"
    device = b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"
    return [
        ("GET", "GET", good, b"", "invalid_request"),
        (
            "JSON body",
            "POST",
            {**good, "content-type": "application/json"},
            b'{"grant_type": 1}',
            "invalid_request",
        ),
        ("binary", "POST", {**good, **FORM}, bytes(range(256)), "invalid_request"),
        ("not a form", "POST", {**good, **FORM}, b"grant_type", "invalid_request"),
        ("broken escape", "POST", {**good, **FORM}, b"grant_type=%ZZ&&=", "invalid_request"),
        ("repeated", "POST", {**good, **FORM}, grant + b"&" + grant, "invalid_request"),
        ("too large", "POST", {**good, **FORM}, grant + b"&x=" + b"a" * 40_000, "invalid_request"),
        (
            "many fields",
            "POST",
            {**good, **FORM},
            b"&".join(b"f%d=1" % i for i in range(100)),
            "invalid_request",
        ),
        ("no grant", "POST", {**good, **FORM}, b"scope=all", "unsupported_grant_type"),
        ("odd grant", "POST", {**good, **FORM}, b"grant_type=password&username=a", "unsupported_grant_type"),
        ("no Basic", "POST", FORM, grant, "invalid_client"),
        ("Basic not base64", "POST", {"authorization": "Basic %%%", **FORM}, grant, "invalid_request"),
        ("Basic no colon", "POST", {**_basic(b"justaname"), **FORM}, grant, "invalid_request"),
        ("Basic not UTF-8", "POST", {**_basic(b"\xff\xfe:\xff"), **FORM}, grant, "invalid_request"),
        ("Basic huge", "POST", {**_basic(b"a:" + b"b" * 5000), **FORM}, grant, "invalid_request"),
        ("wrong secret", "POST", {**wrong, **FORM}, grant, "invalid_client"),
        (
            "unknown client",
            "POST",
            {**_basic(f"nobody:{SENT_SECRET}".encode()), **FORM},
            grant,
            "invalid_client",
        ),
        (
            "other audience",
            "POST",
            {**good, **FORM},
            grant + b"&audience=https%3A%2F%2Fother",
            "invalid_target",
        ),
        ("device, no code", "POST", FORM, device + b"&client_id=flyte-run-widget", "invalid_request"),
        (
            "device, forged code",
            "POST",
            FORM,
            device + b"&client_id=flyte-run-widget&device_code=abc",
            "invalid_grant",
        ),
        ("device, other client", "POST", FORM, device + b"&client_id=evil&device_code=abc", "invalid_client"),
    ]


def test_garbage_at_the_token_endpoint_gets_a_clear_oauth_error(svc: AuthService) -> None:
    key_parts = parts(svc.create_key("garbage"))
    for what, method, headers, body, error in _garbage(key_parts):
        response = svc.http.request(method, f"{svc.url}/oauth2/token", headers=headers, content=body)
        assert 400 <= response.status_code < 500, (what, details(response))
        payload = response.json()
        assert payload["error"] == error, (what, payload)
        assert len(payload["error_description"]) > 20, (what, payload)
        assert_no_secret(response.text, SENT_SECRET, key_parts[2])
    # Garbage at the device authorization endpoint too.
    device = f"{svc.url}/oauth2/device/authorize"
    for headers, body in (
        (FORM, b"client_id=evil"),
        ({}, b"\0\1"),
        (FORM, b"client_id=flyte-run-widget&audience=x"),
    ):
        response = svc.http.post(device, headers=headers, content=body)
        assert 400 <= response.status_code < 500 and response.json()["error"] in OAUTH_ERRORS, details(
            response
        )
    # Still serving, and the key still works.
    assert svc.post_token(svc.create_key("after-garbage")).status_code == 200


def test_forged_foreign_and_odd_tokens_are_unauthenticated(svc: AuthService) -> None:
    token = svc.token(svc.create_key("forger"))
    forged = [
        "frw_" + "A" * 43,
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # one character off
        token.upper(),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJjaSIsImF1ZCI6ImZseXRlLXJ1bi13aWRnZXQifQ.",  # alg none
        "frw_" + "x" * 5000,
        "-",
        "Bearer",
        "\u00e9\u00e8",
    ]
    for credential in forged:
        value = f"Bearer {credential}".encode("latin-1")  # bytes: httpx sends them as they are
        headers = {"content-type": b"application/json", "authorization": value}
        response = svc.http.post(f"{svc.url}{LIST}", content=b"{}", headers=headers)
        assert response.status_code == 401, (credential[:20], details(response))
        assert response.json()["code"] == "unauthenticated"
        assert_no_secret(response.text, token)
    # A valid token beside a forged one in the other header still passes; the forged one alone not.
    both = {
        "content-type": "application/json",
        "authorization": "Bearer frw_forged",
        "flyte-authorization": f"Bearer {token}",
    }
    assert svc.http.post(f"{svc.url}{LIST}", content=b"{}", headers=both).status_code == 200


def test_oversized_headers_are_refused_and_the_service_goes_on(svc: AuthService) -> None:
    json_body = {"content-type": "application/json"}
    for path in (LIST, "/oauth2/token"):
        # Past the HTTP server's header limit: refused before the service sees the call.
        huge = {**json_body, "authorization": "Bearer frw_" + "a" * 200_000}
        assert svc.http.post(f"{svc.url}{path}", content=b"{}", headers=huge).status_code == 431
    # Within it, but far longer than any token: refused unread.
    long = {**json_body, "authorization": "Bearer frw_" + "a" * 12_000}
    response = svc.http.post(f"{svc.url}{LIST}", content=b"{}", headers=long)
    assert response.status_code == 401 and "not valid here" in response.json()["message"], details(response)
    token = svc.token(svc.create_key("after-huge"))
    assert svc.connect(LIST, token).status_code == 200


def test_failed_sign_ins_are_slowed_down_per_client(svc: AuthService) -> None:
    key = svc.create_key("guessed")
    _, client_id, _, org = parts(key)
    wrong = base64.b64encode(f"{svc.host}:{client_id}:{SENT_SECRET}:{org}".encode()).decode()
    statuses = []
    for _ in range(30):
        response = svc.post_token(wrong)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert (
                response.json()["error"] == "slow_down" and "retry in" in response.json()["error_description"]
            )
            assert int(response.headers["retry-after"]) >= 1
            break
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429, statuses
    # Another client from the same address is not held back by this one's failures.
    assert svc.post_token(svc.create_key("innocent")).status_code == 200


def test_throttle_doubles_the_wait_caps_it_forgets_on_success_and_keeps_bounded_memory() -> None:
    now = [1000.0]
    throttle = Throttle(free=2, base=1.0, cap=8.0, max_keys=3, clock=lambda: now[0])
    for _ in range(2):
        throttle.failed("a")
    assert throttle.wait_left("a") == 0
    waits = []
    for _ in range(6):
        throttle.failed("a")
        waits.append(throttle.wait_left("a"))
    assert waits == [1, 2, 4, 8, 8, 8]
    now[0] += 8
    assert throttle.wait_left("a") == 0
    throttle.succeeded("a")
    throttle.failed("a")
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.wait_left("a") == 1  # counting started again
    for name in "bcdefg":
        throttle.failed(name)
    assert len(throttle) == 3 and throttle.wait_left("a") == 0  # the oldest were forgotten


def test_store_tolerates_clock_skew_and_runs_device_logins_by_rfc_8628(tmp_path: Path) -> None:
    store = AuthStore(tmp_path / "auth.db")
    key = store.create_key("ci", "h")
    secret = parts(key)[2]
    assert store.issue_for_key("ci", "wrong", 60) is None
    late = store.issue_for_key("ci", secret, ttl=-10)  # expired ten seconds ago
    assert late is not None
    assert store.check_token(late, leeway=0) is TokenState.EXPIRED
    assert store.check_token(late, leeway=60) is TokenState.VALID

    login = store.start_device(expires_in=600, interval=5)
    assert login is not None and login.device_code not in repr(login)
    assert store.poll_device(login.device_code, 60) == (DeviceState.PENDING, None)
    assert store.poll_device(login.device_code, 60) == (DeviceState.SLOW_DOWN, None)  # at once
    store.decide_device(login.user_code.lower().replace("-", " "), approve=True)
    store._db.execute("UPDATE devices SET last_poll = 0")  # the client waited its interval
    state, token = store.poll_device(login.device_code, 60)
    assert state is DeviceState.APPROVED and token is not None
    assert store.check_token(token) is TokenState.VALID
    store._db.execute("UPDATE devices SET last_poll = 0")
    assert store.poll_device(login.device_code, 60) == (DeviceState.UNKNOWN, None)  # used once only

    stale = store.start_device(expires_in=-1, interval=1)
    assert stale is not None
    assert store.poll_device(stale.device_code, 60) == (DeviceState.EXPIRED, None)
    with pytest.raises(ValueError, match="expired"):
        store.decide_device(stale.user_code, approve=True)
    with pytest.raises(ValueError, match="no device login has the code"):
        store.decide_device("BCDF-GHJK", approve=True)
    store.close()
