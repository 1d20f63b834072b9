"""A click on the widget's run name asks the kernel for the run page's address: the answer (a
custom message, never a trait) carries the embedded service's token in the fragment, and only
for that service's own pages and its own token."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from flyteidl2.common import identifier_pb2
from flyteidl2.workflow import run_definition_pb2

from flyte_run_widget.client.config import Config, build_config
from flyte_run_widget.client.local_service import TOKEN_FILE
from flyte_run_widget.client.rpc import Client
from flyte_run_widget.notebook.page_link import signed_page_url
from flyte_run_widget.notebook.widget import RunWidget
from flyte_run_widget.remote.run import Run

TOKEN = "embedded-token-0123456789abcdef+/="
CLUSTER_KEY = "cluster-bearer-key-never-in-a-url"


def _embedded(tmp_path: Path, port: int = 8123, api_key: str = TOKEN) -> Config:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / TOKEN_FILE).write_text(TOKEN + "\n")
    cfg = build_config(f"127.0.0.1:{port}", project="proj", domain="development", api_key=api_key)
    # What build_config makes when it starts the service itself (no endpoint given).
    return dataclasses.replace(cfg, embedded=True, data_dir=data)


def _widget(cfg: Config) -> tuple[RunWidget, list[dict[str, Any]]]:
    run_id = identifier_pb2.RunIdentifier(project="proj", domain="development", name="r1")
    pb2 = run_definition_pb2.Run(
        action=run_definition_pb2.Action(id=identifier_pb2.ActionIdentifier(run=run_id, name="a0"))
    )
    w = RunWidget(Run(pb2, _client=Client(cfg)), follow=False)
    sent: list[dict[str, Any]] = []
    w.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    return w, sent


def test_the_embedded_services_page_gets_its_token(tmp_path: Path) -> None:
    cfg = _embedded(tmp_path)
    url = f"{cfg.console_url}/v2/domain/development/project/proj/runs/r1"
    assert url.startswith("http://127.0.0.1:8123/")
    # Quoted: the page reads the fragment with decodeURIComponent.
    assert signed_page_url(cfg, url) == f"{url}#token=embedded-token-0123456789abcdef%2B%2F%3D"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8124/v2/domain/development/project/proj/runs/r1",  # another port
        "http://localhost:8123/v2/domain/development/project/proj/runs/r1",  # another origin
        "https://127.0.0.1:8123/v2/domain/development/project/proj/runs/r1",
        "http://127.0.0.1:8123.evil.example/v2/runs/r1",
        "http://127.0.0.1:8123/v2/domain/development/project/proj/runs/r1?x=1",
        "http://127.0.0.1:8123/v2/domain/development/project/proj/runs/r1#token=other",
        "javascript:alert(1)//http://127.0.0.1:8123/",
        "",
    ],
)
def test_no_token_for_another_address(tmp_path: Path, url: str) -> None:
    assert signed_page_url(_embedded(tmp_path), url) is None


def test_no_token_for_a_key_that_is_not_the_services(tmp_path: Path) -> None:
    # A client given its own key for the loopback endpoint: that key may be a cluster's.
    cfg = _embedded(tmp_path, api_key=CLUSTER_KEY)
    assert signed_page_url(cfg, f"{cfg.console_url}/v2/domain/development/project/proj/runs/r1") is None
    # Not embedded: a loopback port may be a port-forward to a cluster.
    plain = dataclasses.replace(_embedded(tmp_path), embedded=False)
    assert signed_page_url(plain, f"{plain.console_url}/v2/domain/development/project/proj/runs/r1") is None


def test_the_widget_answers_with_the_signed_address_once(tmp_path: Path) -> None:
    w, sent = _widget(_embedded(tmp_path))
    try:
        w._handle({"type": "page_url", "id": "c1", "url": "https://elsewhere.example/"})
        # ipykernel 7 hands the same click over a second time once a blocking cell ends.
        w._handle({"type": "page_url", "id": "c1"})
        url = "http://127.0.0.1:8123/v2/domain/development/project/proj/runs/r1"
        token = "embedded-token-0123456789abcdef%2B%2F%3D"
        # The kernel's own run_url, never an address the view sent.
        assert sent == [{"type": "page_url", "id": "c1", "url": f"{url}#token={token}"}]
        assert TOKEN not in str(w.get_state()) and token not in str(w.get_state())
    finally:
        w.close()


def test_a_remote_endpoint_with_a_key_gets_the_plain_address(tmp_path: Path) -> None:
    cfg = build_config("https://flyte.example.com", project="proj", domain="development", api_key=CLUSTER_KEY)
    w, sent = _widget(cfg)
    try:
        w._handle({"type": "page_url", "id": "c2"})
        assert sent == [{"type": "page_url", "id": "c2", "url": ""}]
        assert CLUSTER_KEY not in str(sent) + str(w.get_state())
    finally:
        w.close()


def test_no_answer_through_the_text_transport(tmp_path: Path) -> None:
    # Its outbox is a trait, saved with the notebook: the view opens the plain address itself.
    w, sent = _widget(_embedded(tmp_path))
    try:
        w.transport = "text"
        w._handle({"type": "page_url", "id": "c3"})
        assert sent == [] and TOKEN not in w.outbox
    finally:
        w.close()
