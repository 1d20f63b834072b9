"""This package's client signing in to the real service started with ``serve --auth`` (TLS, its
own certificate): an API key (client credentials), a device login approved with
``flyte-run-widget auth approve``, tokens renewed under load, and refusals that say why."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from auth_client_support import AuthService, auth_service_fixture, secrets_seen  # noqa: F401 (a fixture)

import flyte_run_widget as frw
from flyte_run_widget.client import loop as _loop
from flyte_run_widget.client import sign_in
from flyte_run_widget.client.rpc import get_client
from flyte_run_widget.client.streams import follow_logs
from flyte_run_widget.errors import SignInError

TRANSPORT = os.environ.get("FLYTE_RUN_WIDGET_TRANSPORT", "grpc")
LINES = 300


def chatty(n: int) -> int:
    for i in range(n):
        print(f"line {i}")
    return n


def _init(service: AuthService, **kwargs: object) -> None:
    frw.init(service.endpoint, ca_cert=service.cert, project="proj", transport=TRANSPORT, **kwargs)  # type: ignore[arg-type]


def _all_lines(run: frw.Run) -> list[str]:
    async def read() -> list[str]:
        got: list[str] = []
        async for batch in follow_logs(get_client(), run.action_id, 1):
            got.extend(line.message for line in batch)
        return got

    return _task_lines(_loop.submit(read()).result(120))


def _task_lines(messages: list[str]) -> list[str]:
    """The task's own lines (the service adds a few of its own)."""
    return [m.strip() for m in messages if m.startswith("line ")]


# Tokens that outlive the test: a 3-s token would be renewed (legitimately) whenever the run,
# its outputs and its logs take more than 2.7 s, as they do on a loaded machine; renewal is
# what the test of fifty streams is about.
@pytest.mark.token_ttl(3600)
def test_api_key_signs_in_and_every_channel_carries_the_token(auth_service: AuthService) -> None:
    key = auth_service.key("laptop")
    secrets_seen.append(key)
    _init(auth_service, api_key=key)
    run = frw.run(chatty, n=5)
    run.wait(quiet=True)
    assert run.outputs()[0] == 5
    assert _all_lines(run) == [f"line {i}" for i in range(5)]  # the data plane's TailLogs too
    client = get_client()
    assert client._tokens is not None and client._bearer is not None
    assert client._bearer[0] == "flyte-authorization"  # the header discovery names
    assert client._tokens.requests == 1  # one token for the control plane and the data plane
    token = client._bearer[1]
    secrets_seen.append(token.split()[-1])
    for text in (repr(client.config), repr(run), run.to_json(), repr(client._tokens)):
        assert key not in text and token not in text


def test_wrong_and_deleted_keys_are_refused_with_reasons(auth_service: AuthService) -> None:
    key = auth_service.key("ci")
    secrets_seen.append(key)

    host, client_id, secret, org = base64.b64decode(key).decode().split(":", 3)
    wrong = base64.b64encode(f"{host}:{client_id}:{'x' * len(secret)}:{org}".encode()).decode()
    _init(auth_service, api_key=wrong)
    with pytest.raises(SignInError, match=r"refused to sign us in .*invalid_client") as info:
        list(frw.Run.listall())
    assert wrong not in str(info.value) and secret not in str(info.value)

    _init(auth_service, api_key=key)
    assert isinstance(list(frw.Run.listall()), list)
    auth_service.cli("api-key", "delete", "ci")
    # The token is revoked with its key: UNAUTHENTICATED, one new token request, refused.
    with pytest.raises(SignInError, match="invalid_client") as info:
        list(frw.Run.listall())
    assert secret not in str(info.value) and key not in str(info.value)
    assert get_client()._tokens.requests == 2  # type: ignore[union-attr]


def test_device_flow_approved_through_the_cli(auth_service: AuthService, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"admin:\n  endpoint: dns:///{auth_service.endpoint}\n  authType: DeviceFlow\n"
        f"  caCertFilePath: {auth_service.cert}\ntask:\n  project: proj\n"
    )
    approved: list[str] = []
    owners: list[threading.Thread] = []

    def approve(prompt: sign_in.SignInPrompt | None) -> None:
        if prompt is not None:
            # As the service's owner would, from another terminal.
            owner = threading.Thread(
                target=lambda: approved.append(auth_service.cli("auth", "approve", prompt.code))
            )
            owners.append(owner)
            owner.start()

    remove = sign_in.add_listener(approve)
    try:
        frw.init(config_file=config, transport=TRANSPORT)
        runs = list(frw.Run.listall())
    finally:
        remove()
        for owner in owners:  # the command may still be printing after the service took the approval
            owner.join(60)
    assert isinstance(runs, list)
    assert len(approved) == 1 and "approved" in approved[0]
    assert sign_in.current() is None
    assert get_client()._tokens.requests >= 2  # type: ignore[union-attr]  # the start, then polls


def _refused(service: AuthService, token: str) -> bool:
    """Whether the service refuses ``token`` on a Connect call (401), as it does every RPC."""
    request = urllib.request.Request(
        f"https://{service.endpoint}/flyteidl2.workflow.RunService/ListRuns",
        data=b"{}",
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
    )
    context = ssl.create_default_context(cafile=str(service.cert))
    try:
        with urllib.request.urlopen(request, context=context, timeout=30):
            return False
    except urllib.error.HTTPError as e:
        return e.code == 401


def _wait_until_refused(service: AuthService, token: str) -> None:
    deadline = time.monotonic() + 60
    while not _refused(service, token):
        assert time.monotonic() < deadline, "the service still takes a token past its life"
        time.sleep(0.1)


@pytest.mark.token_ttl(10)
def test_fifty_streams_across_an_expiry_make_one_token_request_and_lose_nothing(
    auth_service: AuthService,
) -> None:
    key = auth_service.key("load")
    secrets_seen.append(key)
    _init(auth_service, api_key=key)
    run = frw.run(chatty, n=LINES)
    run.wait(quiet=True)
    client = get_client()
    tokens = client._tokens
    assert tokens is not None
    expected = [f"line {i}" for i in range(LINES)]

    async def fifty(after: float) -> tuple[int, list[int], int, list[list[str]]]:
        """50 streams started once the token is ``after`` seconds past its expiry; the token
        requests made before the wait, as each stream got its first lines, and once all ended
        (tokens live 10 s here, far longer than the 50 streams take)."""
        token = tokens._token
        assert token is not None and token.expires_at is not None
        # Counted before the wait: a call of the run's own watchers may renew first.
        before = tokens.requests
        while time.monotonic() < token.expires_at + after:
            await asyncio.sleep(0.05)
        seen: list[int] = []

        async def one() -> list[str]:
            got: list[str] = []
            async for batch in follow_logs(client, run.action_id, 1):
                if not got:
                    seen.append(tokens.requests)
                got.extend(line.message for line in batch)
            return got

        results = await asyncio.gather(*(one() for _ in range(50)))
        return before, seen, tokens.requests, results

    # Past the client's renewal time and the service's expiry (no grace).
    before, seen, after, results = _loop.submit(fifty(0.2)).result(180)
    assert seen == [before + 1] * 50 and after == before + 1
    assert all(_task_lines(r) == expected for r in results)

    # The same when the service refuses a token the client still thinks good (a clock that runs
    # fast, a token revoked): every refused call asks for one new token between them.
    token = tokens._token
    assert token is not None
    token.renew_at = None  # the client no longer renews it by itself
    # The service counts the token's life from its issue, a little after the client sent for it
    # (much later under load): the streams start only once the service refuses it.
    _wait_until_refused(auth_service, token.value)
    before, seen, after, results = _loop.submit(fifty(0.2)).result(180)
    assert seen == [before + 1] * 50 and after == before + 1
    assert all(_task_lines(r) == expected for r in results)
