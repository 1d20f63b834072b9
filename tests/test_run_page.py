"""The run page and the runs list page the service serves on its own port (server/pages.py):
HTML at the Flyte console's paths with a strict Content-Security-Policy, the page's script, 404
for anything else, and no call from the page without the service's token."""

from __future__ import annotations

import json
import ssl
import stat
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import cli
from conftest import TOKEN, LocalService, ServiceClient, python_task

import flyte_run_widget as frw
from flyte_run_widget.server.pages import CSP

RUNS = "/flyteidl2.workflow.RunService"


class Answer:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


def request(url: str, data: bytes | None = None, headers: dict[str, str] | None = None, **kw: Any) -> Answer:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    handlers: list[Any] = [NoRedirect()]
    if kw.get("context") is not None:
        handlers.append(urllib.request.HTTPSHandler(context=kw["context"]))
    opener = urllib.request.build_opener(*handlers)
    req = urllib.request.Request(
        url, data=data, headers=headers or {}, method="POST" if data is not None else "GET"
    )
    try:
        with opener.open(req, timeout=20) as resp:
            return Answer(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as e:
        return Answer(e.code, e.headers, e.read())


@pytest.fixture
def run_name(service: LocalService) -> Iterator[str]:
    client = ServiceClient(service.endpoint)
    try:
        run = client.create(python_task("print('hello')"), name="pagerun")
        client.wait(run.action.id)
        yield run.action.id.run.name
    finally:
        client.close()


def test_run_url_is_the_run_page(service: LocalService, run_name: str) -> None:
    frw.init(service.endpoint, project="proj", domain="development")
    url = frw.Run.get(run_name).url
    assert url == f"http://{service.endpoint}/v2/domain/development/project/proj/runs/{run_name}"
    page = request(url)
    assert page.status == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    assert page.headers["x-content-type-options"] == "nosniff"
    html = page.body.decode()
    assert '<script type="module" src="/_page/page.js"></script>' in html
    # The page holds no data: the run's name is read from the URL by the script.
    assert run_name not in html
    script = request(f"http://{service.endpoint}/_page/page.js")
    assert script.status == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert b"WatchRunDetails" in script.body
    assert request(f"http://{service.endpoint}/_page/page.css").status == 200


def test_list_page_and_redirect(service: LocalService) -> None:
    base = f"http://{service.endpoint}"
    listing = request(f"{base}/v2/domain/development/project/proj/runs")
    assert listing.status == 200
    assert listing.headers["content-security-policy"] == CSP
    home = request(f"{base}/")
    assert home.status == 302
    assert home.headers["location"] == "/v2/domain/development/project/flytesnacks/runs"


@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/v2/domain/development/project/proj/runz",
        "/v2/domain/d/project/p/runs/a/b",
        "/_page/../app.py",
        "/_page/widget.js",
        "/flyteidl2.workflow.Nope/Get",
    ],
)
def test_unknown_paths_are_404(service: LocalService, path: str) -> None:
    answer = request(f"http://{service.endpoint}{path}")
    assert answer.status == 404, (path, answer.status, answer.body[:200])
    assert answer.headers["content-security-policy"] == CSP


def _connect_json(
    url: str, method: str, body: dict[str, Any], token: str | None, context: ssl.SSLContext
) -> Answer:
    headers = {"content-type": "application/json", "connect-protocol-version": "1"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return request(f"{url}{RUNS}/{method}", json.dumps(body).encode(), headers, context=context)


def test_page_calls_need_the_token(exposed: tuple[str, Path]) -> None:
    endpoint, cert = exposed
    context = ssl.create_default_context(cafile=str(cert))
    url = f"https://{endpoint}"
    # The HTML may be served without the token: it holds nothing but the script's address.
    page = request(f"{url}/v2/domain/development/project/proj/runs/anything", context=context)
    assert page.status == 200
    assert page.headers["content-security-policy"] == CSP
    listing = {"projectId": {"name": "proj", "domain": "development"}}
    # What the page sends (Connect, JSON): refused without the token or with a wrong one.
    for token in (None, "wrong-token-wrong-token"):
        refused = _connect_json(url, "ListRuns", listing, token, context)
        assert refused.status == 401, refused.body
        assert json.loads(refused.body)["code"] == "unauthenticated"
    served = _connect_json(url, "ListRuns", listing, TOKEN, context)
    assert served.status == 200, served.body
    assert "runs" in json.loads(served.body) or json.loads(served.body) == {}
    # A server stream, as the page follows WatchRuns, is refused the same way.
    frame = json.dumps(listing).encode()
    stream = request(
        f"{url}{RUNS}/WatchRuns",
        struct.pack(">BI", 0, len(frame)) + frame,
        {"content-type": "application/connect+json"},
        context=context,
    )
    assert stream.status == 401


def test_open_puts_the_token_in_the_fragment(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # The token file where the command line finds the service's token (client/local_service.py).
    service = LocalService(data, args=["--token-file", str(data / "service.token")])
    try:
        token = (data / "service.token").read_text().strip()
        assert token
        client = ServiceClient(service.endpoint)
        seen = tmp_path / "seen"
        browser = tmp_path / "browser.sh"
        browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {seen}.tmp && mv {seen}.tmp {seen}\n')
        browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
        done = cli("open", "nothing-here", "--data-dir", str(data), "--project", "proj", cwd=tmp_path,
                   env={"BROWSER": str(browser)})  # fmt: skip
        assert done.returncode != 0  # the command itself sends the token: a missing run is the error
        assert "no run named 'nothing-here'" in done.stderr
        client.close()
        _make_run(service, token)
        done = cli("open", "tokenrun", "--data-dir", str(data), "--project", "proj", cwd=tmp_path,
                   env={"BROWSER": str(browser)})  # fmt: skip
        assert done.returncode == 0, done.stderr
        url = f"http://{service.endpoint}/v2/domain/development/project/proj/runs/tokenrun"
        # What is printed (and may end up in a terminal's scrollback) has no token.
        assert done.stdout.splitlines()[0] == url
        assert token not in done.stdout + done.stderr
        for _ in range(600):
            if seen.exists():
                break
            time.sleep(0.05)
        assert seen.read_text() == f"{url}#token={token}"
    finally:
        service.stop()


def _make_run(service: LocalService, token: str) -> None:
    import grpc
    from flyteidl2.common import identifier_pb2 as ids
    from flyteidl2.workflow import run_service_pb2, run_service_pb2_grpc

    with grpc.insecure_channel(service.endpoint) as channel:
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        req = run_service_pb2.CreateRunRequest(
            run_id=ids.RunIdentifier(project="proj", domain="development", name="tokenrun"),
            task_spec=python_task("print(1)"),
        )
        stub.CreateRun(req, timeout=20, metadata=[("authorization", f"Bearer {token}")])
