"""What the flyte SDK uploads before a run (DataProxyService CreateUploadLocation + a PUT of the
code bundle, UploadInputs) and how the service refuses flyte tasks it cannot run, spoken as
Connect JSON so that no SDK is needed here (test_sdk_programs.py drives the real one)."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from conftest import LocalService

DP = "flyteidl2.dataproxy.DataProxyService"
RS = "flyteidl2.workflow.RunService"


def call(service: LocalService, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"http://{service.endpoint}/{path}",
        json=body,
        headers={"content-type": "application/json"},
        timeout=30,
    )


def location(service: LocalService, data: bytes, filename: str = "fast0.tar.gz") -> dict[str, Any]:
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    response = call(
        service,
        f"{DP}/CreateUploadLocation",
        {"project": "p", "domain": "development", "filename": filename, "contentMd5": md5},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def put(url: str, data: bytes, **headers: str) -> httpx.Response:
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    return httpx.put(url, content=data, headers={"Content-MD5": md5, **headers}, timeout=30)


def path_of(uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(unquote(urlsplit(uri).path))


@pytest.fixture
def plain_service(tmp_path: Path) -> Iterator[LocalService]:
    svc = LocalService(tmp_path / "data")
    try:
        yield svc
    finally:
        svc.stop()


def test_an_uploaded_bundle_lands_in_the_data_folder_and_survives_a_restart(
    plain_service: LocalService,
) -> None:
    data = b"a code bundle" * 1000
    where = location(plain_service, data)
    assert put(where["signedUrl"], data).status_code == 201
    stored = path_of(where["nativeUrl"])
    assert stored.is_relative_to(plain_service.data_dir.resolve())
    assert stored.read_bytes() == data
    plain_service.restart()
    # The SDK remembers the URI for a day and then uploads nothing: the file must still be there.
    assert stored.read_bytes() == data


def test_an_upload_must_match_its_md5_and_signature(plain_service: LocalService) -> None:
    data = b"the real bundle"
    where = location(plain_service, data)
    url = where["signedUrl"]
    wrong = put(
        url, b"something else", **{"Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode()}
    )
    assert wrong.status_code == 400 and "MD5" in wrong.text, wrong.text
    header = put(url, data, **{"Content-MD5": base64.b64encode(b"0" * 16).decode()})
    assert header.status_code == 400 and "Content-MD5" in header.text, header.text
    forged = put(url.replace("sig=", "sig=0"), data)
    assert forged.status_code == 403 and "signature" in forged.text, forged.text
    unsigned = put(url.split("?")[0], data)
    assert unsigned.status_code == 403, unsigned.text
    assert not path_of(where["nativeUrl"]).exists()


def test_an_upload_too_large_is_refused_before_it_is_read(plain_service: LocalService) -> None:
    data = b"x"
    url = urlsplit(location(plain_service, data)["signedUrl"])
    host, port = url.netloc.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        request = (
            f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Length: {2**40}\r\n\r\n"
        )
        sock.sendall(request.encode())
        answer = ""
        while "at most" not in answer and (chunk := sock.recv(65536)):
            answer += chunk.decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "the local Run service stores files of at most" in answer
    declared = call(
        plain_service,
        f"{DP}/CreateUploadLocation",
        {
            "project": "p",
            "filename": "big.tar.gz",
            "contentMd5": base64.b64encode(b"0" * 16).decode(),
            "contentLength": str(2**40),
        },
    )
    assert declared.status_code == 400 and declared.json()["code"] == "failed_precondition", declared.text


def test_uploaded_inputs_are_read_back_only_from_the_service_files(plain_service: LocalService) -> None:
    response = call(plain_service, f"{DP}/UploadInputs", {"projectId": {"name": "p"}, "inputs": {}})
    assert response.status_code == 200, response.text
    uri = response.json()["offloadedInputData"]["uri"]
    assert path_of(uri).is_relative_to(plain_service.data_dir.resolve())
    elsewhere = plain_service.data_dir.parent / "secret.pb"
    elsewhere.write_bytes(b"")
    task = {"taskTemplate": {"id": {"name": "t"}, "container": {"command": ["true"]}}}
    refused = call(
        plain_service,
        f"{RS}/CreateRun",
        {"projectId": {"name": "p"}, "taskSpec": task, "offloadedInputData": {"uri": elsewhere.as_uri()}},
    )
    assert refused.status_code == 400 and "is not a file this service stored" in refused.text, refused.text
    accepted = call(
        plain_service,
        f"{RS}/CreateRun",
        {"projectId": {"name": "p"}, "taskSpec": task, "offloadedInputData": {"uri": uri}},
    )
    assert accepted.status_code == 200, accepted.text


FLYTE_TASK = {
    "taskTemplate": {"id": {"name": "flyte_task"}, "container": {"args": ["a0", "--inputs", "{{.input}}"]}}
}


@pytest.mark.skipif(importlib.util.find_spec("flyte") is not None, reason="this Python has flyte installed")
def test_a_flyte_task_without_a_flyte_python_names_the_option(plain_service: LocalService) -> None:
    response = call(plain_service, f"{RS}/CreateRun", {"projectId": {"name": "p"}, "taskSpec": FLYTE_TASK})
    assert response.json()["code"] == "failed_precondition", response.text
    assert "has no flyte installed" in response.text and "--flyte-python" in response.text, response.text


@pytest.mark.skipif(importlib.util.find_spec("flyte") is not None, reason="this Python has flyte installed")
def test_a_flyte_python_without_flyte_is_named(tmp_path: Path) -> None:
    svc = LocalService(tmp_path / "data", args=["--flyte-python", sys.executable])
    try:
        response = call(svc, f"{RS}/CreateRun", {"projectId": {"name": "p"}, "taskSpec": FLYTE_TASK})
    finally:
        svc.stop()
    assert response.json()["code"] == "failed_precondition", response.text
    assert f"({sys.executable}) cannot import flyte" in response.text, response.text
