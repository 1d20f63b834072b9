"""The public flyte SDK 2.12.1, unmodified, in its own environment, signs in to ``serve --auth`` as
it signs in to a Flyte cluster: ``flyte.init_from_api_key(key)`` (client credentials) and a
config with ``admin.authType: DeviceFlow`` (approved with ``flyte-run-widget auth approve``).

An API key holds ``host:client_id:secret:org``, no port: the SDK makes it ``https://host`` and
connects to 443. So the service listens on port 443 of a loopback address of its own
(127.x.y.z; this needs root, as the test machines run). Its certificate comes from a CA of its
own, given to the SDK as SSL_CERT_FILE: the SDK's two HTTP clients (pyqwest for RPCs, httpx for
the token endpoint) both read it, while ``ca_cert_file_path`` reaches only the first.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from auth_support import AuthService, assert_no_secret, parts
from conftest import python_task
from flyteidl2.common import identifier_pb2, phase_pb2
from flyteidl2.workflow import run_service_pb2, run_service_pb2_grpc

SDK_PYTHON = os.environ.get("FRW_SDK212_PYTHON", "")
SCRIPT = Path(__file__).with_name("sdk212_auth_client.py")
PROJECT, DOMAIN = "authproj", "development"
DEVICE_LINK = r"(https://\S+/oauth2/device\?user_code=([A-Z]{4}-[A-Z]{4}))"
LINES = ["signed in, line 1", "signed in, line 2", "signed in, line 3"]

pytestmark = pytest.mark.skipif(
    not SDK_PYTHON,
    reason="FRW_SDK212_PYTHON is not set: point it at the python of an environment with"
    " flyte==2.12.1 (scripts/test creates .venv-sdk212 and sets it)",
)


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail(
            "this test listens on port 443 (the port the flyte SDK takes for an API key's host),"
            " which needs root: run it as root, as scripts/test does on the test machines"
        )


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[AuthService]:
    _require_root()
    service = AuthService(tmp_path / "svc", 443, "--device-interval", "1")
    try:
        yield service
    finally:
        service.stop()


def finished_run(svc: AuthService, token: str) -> str:
    """A run that printed LINES and succeeded, made with the access token over gRPC."""
    creds = grpc.ssl_channel_credentials(root_certificates=svc.ca.read_bytes())
    metadata = [("authorization", f"Bearer {token}")]
    code = "".join(f"print({line!r})\n" for line in LINES)
    with grpc.secure_channel(f"{svc.host}:443", creds) as channel:
        runs = run_service_pb2_grpc.RunServiceStub(channel)
        request = run_service_pb2.CreateRunRequest(
            task_spec=python_task(code),
            project_id=identifier_pb2.ProjectIdentifier(name=PROJECT, domain=DOMAIN),
        )
        run = runs.CreateRun(request, metadata=metadata, timeout=30).run
        watch = run_service_pb2.WatchActionDetailsRequest(action_id=run.action.id)
        last = None
        for response in runs.WatchActionDetails(watch, metadata=metadata, timeout=60):
            last = response.details
        assert last is not None and last.status.phase == phase_pb2.ACTION_PHASE_SUCCEEDED, last
    return str(run.action.id.run.name)


class SdkProcess:
    """The SDK script in its own environment, its output read line by line as it comes."""

    def __init__(self, svc: AuthService, *args: str, key: str | None = None) -> None:
        home = svc.folder / f"home-{time.monotonic_ns()}"
        home.mkdir()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),  # no user config, keyring or cached credentials
            "LANG": "C.UTF-8",
            "COLUMNS": "300",  # the device flow's link on one line
            "NO_COLOR": "1",
            "PYTHONUNBUFFERED": "1",  # the device link arrives while the SDK polls
            "SSL_CERT_FILE": str(svc.ca),
        }
        if key is not None:
            env["FLYTE_API_KEY"] = key
        self.proc = subprocess.Popen(
            [SDK_PYTHON, str(SCRIPT), *args],
            cwd=home,  # no ./config.yaml either
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"the SDK ended before printing {pattern!r}:\n{self.detail()}")
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found

    def detail(self) -> str:
        self.proc.wait(60)
        stderr = self.proc.stderr.read() if self.proc.stderr else ""
        return f"stdout: {''.join(self.seen)}\nstderr: {stderr[-6000:]}"

    def result(self, timeout: float = 180, on_line: Any = None) -> dict[str, Any]:
        last = ""
        deadline = time.monotonic() + timeout
        while (line := self.lines.get(timeout=max(0.0, deadline - time.monotonic()))) is not None:
            self.seen.append(line)
            last = line
            if on_line is not None:
                on_line(line)
        self.proc.wait(30)
        assert self.proc.returncode == 0, self.detail()
        result: dict[str, Any] = json.loads(last)
        assert result["flyte_version"] == "2.12.1", result["flyte_version"]
        return result


def ok(result: dict[str, Any], step: str) -> dict[str, Any]:
    record: dict[str, Any] = result[step]
    assert record["ok"], f"{step} failed in the flyte SDK: {record['error']}\n{record['traceback']}"
    return record


def failed(result: dict[str, Any], step: str) -> str:
    record = result[step]
    assert not record["ok"], f"{step} should have been refused: {record}"
    return str(record["error"])


def _reads_the_run(result: dict[str, Any], run: str, suffix: str = "") -> None:
    assert run in ok(result, "listall" + suffix)["names"]
    assert ok(result, "get" + suffix)["phase"] == "succeeded"
    assert [line.strip() for line in ok(result, "get_logs" + suffix)["lines"]] == LINES


def test_sdk_signs_in_with_an_api_key_and_loses_access_when_it_is_deleted(svc: AuthService) -> None:
    key = svc.create_key("sdk")
    run = finished_run(svc, svc.token(key))
    gate = svc.folder / "gate"
    sdk = SdkProcess(svc, "key", run, str(gate), key=key)
    sdk.wait_for("WAITING")
    svc.cli("api-key", "delete", "sdk")
    gate.touch()
    result = sdk.result()

    ok(result, "init")
    _reads_the_run(result, run)
    # One token per channel (control plane, and the data plane's for the logs) before the
    # deletion; after it, calls are UNAUTHENTICATED, the SDK asks for a new token and the token
    # endpoint refuses the deleted key.
    requests = result["token_requests"]
    assert 1 <= requests.count(200) <= 2 and 401 in requests, requests
    assert requests == sorted(requests), requests  # no token after the first refusal
    assert any(c.startswith("UNAUTHENTICATED") and "revoked" in c for c in result["codes_seen"]), result
    assert "the API key is wrong or was deleted" in failed(result, "listall_after")
    assert_no_secret(svc.output(), parts(key)[2])


def test_sdk_with_a_wrong_key_is_refused_and_told_why(svc: AuthService) -> None:
    host, client_id, secret, org = parts(svc.create_key("sdk"))
    import base64

    wrong = base64.b64encode(f"{host}:{client_id}:{secret[:-4]}AAAA:{org}".encode()).decode()
    result = SdkProcess(svc, "key", "rnone", key=wrong).result()
    ok(result, "init")  # the SDK signs in at its first call
    assert "the API key is wrong or was deleted" in failed(result, "listall")
    assert all(status == 401 for status in result["token_requests"]), result["token_requests"]
    assert_no_secret(svc.output(), secret, wrong)


def test_sdk_with_an_expired_token_gets_unauthenticated_and_says_so(tmp_path: Path) -> None:
    _require_root()
    # Tokens expire as they are made, with no tolerance: the SDK's token and the one it fetches
    # on UNAUTHENTICATED are both expired when they arrive.
    svc = AuthService(tmp_path, 443, "--token-ttl", "0", "--clock-skew", "0")
    try:
        result = SdkProcess(svc, "key", "rnone", key=svc.create_key("sdk")).result()
    finally:
        svc.stop()
    assert "the access token has expired" in failed(result, "listall")
    assert any(c.startswith("UNAUTHENTICATED: the access token has expired") for c in result["codes_seen"])
    assert result["token_requests"] == [200, 200], result["token_requests"]


def _device_config(svc: AuthService) -> Path:
    config = svc.folder / "device-config.yaml"
    config.write_text(
        f"admin:\n  endpoint: dns:///{svc.host}\n  authType: DeviceFlow\n  insecure: false\n"
        f"task:\n  project: {PROJECT}\n  domain: {DOMAIN}\n"
    )
    return config


def test_sdk_device_flow_signs_in_once_the_owner_approves(svc: AuthService) -> None:
    run = finished_run(svc, svc.token(svc.create_key("maker")))
    sdk = SdkProcess(svc, "config", str(_device_config(svc)), run)
    link = sdk.wait_for(DEVICE_LINK)
    assert link.group(1).startswith(svc.url)
    code = link.group(2)
    assert code in svc.cli("auth", "pending").stdout
    svc.cli("auth", "approve", code)
    approved = [code]

    def approve(line: str) -> None:
        # The SDK signs its data-plane channel in on its own: without a keyring to share the
        # first token (none here) that is a second device login, approved the same way.
        found = re.search(DEVICE_LINK, line)
        if found:
            svc.cli("auth", "approve", found.group(2))
            approved.append(found.group(2))

    result = sdk.result(on_line=approve)
    ok(result, "init")
    _reads_the_run(result, run)
    # It polled (authorization_pending) until each approval, then got one token per login.
    assert result["token_requests"].count(200) == len(approved), (result["token_requests"], approved)
    assert set(result["token_requests"]) <= {200, 400}, result["token_requests"]
    again = svc.cli("auth", "approve", code, check=False)
    assert again.returncode == 1 and "already" in again.stderr


def test_sdk_device_flow_denied_by_the_owner_is_refused(svc: AuthService) -> None:
    sdk = SdkProcess(svc, "config", str(_device_config(svc)), "rnone")
    code = sdk.wait_for(DEVICE_LINK).group(2)
    svc.cli("auth", "deny", code.lower())  # codes are taken in any case
    denied = [code]

    def deny(line: str) -> None:  # each later call of the script starts a new login
        found = re.search(DEVICE_LINK, line)
        if found:
            svc.cli("auth", "deny", found.group(2))
            denied.append(found.group(2))

    result = sdk.result(on_line=deny)
    assert "denied" in failed(result, "listall")
    assert 200 not in result["token_requests"], result["token_requests"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
