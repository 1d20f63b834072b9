"""``serve --auth``: discovery, the token endpoint, API keys and the access-token check on every RPC
of every protocol (gRPC, Connect in JSON and binary, gRPC-Web), against the real service over TLS
with a CA of its own. Hostile input is in test_auth_hostile.py; the flyte SDK in
test_sdk212_auth.py."""

from __future__ import annotations

import socket
import sqlite3
import ssl
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from auth_support import AuthService, assert_no_secret, details, parts
from flyteidl2.cluster import service_pb2 as cluster_service_pb2
from flyteidl2.dataproxy import dataproxy_service_pb2
from flyteidl2.workflow import run_logs_service_pb2, run_service_pb2

from flyte_run_widget.server.auth import ExposureError, check_exposure
from flyte_run_widget.server.oauth import OAuthSettings

DISCOVERY = "/flyteidl2.auth.AuthMetadataService"


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[AuthService]:
    service = AuthService(tmp_path)
    try:
        yield service
    finally:
        service.stop()


def _methods() -> list[tuple[str, bool]]:
    out = []
    for module in (run_service_pb2, run_logs_service_pb2, cluster_service_pb2, dataproxy_service_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                out.append((f"/{service.full_name}/{method.name}", method.server_streaming))
    return out


def test_discovery_names_the_endpoints_and_needs_no_token(svc: AuthService) -> None:
    meta = svc.connect(f"{DISCOVERY}/GetOAuth2Metadata", None)
    assert meta.status_code == 200, details(meta)
    body = meta.json()
    assert body["tokenEndpoint"] == f"{svc.url}/oauth2/token"
    assert body["deviceAuthorizationEndpoint"] == f"{svc.url}/oauth2/device/authorize"
    assert body["issuer"] == svc.url
    assert "client_credentials" in body["grantTypesSupported"]
    client = svc.connect(f"{DISCOVERY}/GetPublicClientConfig", None).json()
    assert client["clientId"] == "flyte-run-widget"
    assert client["authorizationMetadataKey"] == "flyte-authorization"
    assert client["audience"] == "flyte-run-widget" and client["scopes"] == ["all"]
    # The same over gRPC, and RFC 8414's document.
    creds = grpc.ssl_channel_credentials(root_certificates=svc.ca.read_bytes())
    with grpc.secure_channel(f"{svc.host}:{svc.port}", creds) as channel:
        raw = channel.unary_unary(f"{DISCOVERY}/GetOAuth2Metadata")(b"", timeout=10)
    assert f"{svc.url}/oauth2/token".encode() in raw
    well_known = svc.http.get(f"{svc.url}/.well-known/oauth-authorization-server").json()
    assert well_known["token_endpoint"] == f"{svc.url}/oauth2/token"


def _grpc_code(channel: grpc.Channel, path: str, streaming: bool, metadata: list[tuple[str, str]]) -> str:
    try:
        if streaming:
            call = channel.unary_stream(path)(b"", metadata=metadata, timeout=5)
            for _ in call:
                break
            call.cancel()
        else:
            channel.unary_unary(path)(b"", metadata=metadata, timeout=5)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.UNAUTHENTICATED:
            assert "sign" in (e.details() or "") or "token" in (e.details() or ""), e.details()
        return str(e.code().name)
    return "OK"


def _grpc_web_status(svc: AuthService, path: str, headers: dict[str, str]) -> str:
    with svc.http.stream(
        "POST",
        f"{svc.url}{path}",
        content=b"\0\0\0\0\0",
        headers={"content-type": "application/grpc-web+proto", "x-grpc-web": "1", **headers},
    ) as response:  # the headers only: a stream that was let in goes on
        return response.headers.get("grpc-status", "trailer")  # "trailer": not a trailers-only refusal


def test_every_rpc_of_every_protocol_needs_a_valid_token(svc: AuthService) -> None:
    token = svc.token(svc.create_key("ci"))
    other = AuthService(svc.folder / "other")  # a token of another service is not one of ours
    try:
        foreign = other.token(other.create_key("ci"))
    finally:
        other.stop()
    refused: list[dict[str, str]] = [
        {},
        {"authorization": "Bearer frw_forged-forged-forged-forged-forged-forged00"},
        {"authorization": token},  # no "Bearer"
        {"authorization": f"Basic {token}"},
        {"flyte-authorization": f"Bearer {foreign}"},
    ]
    accepted = [{"authorization": f"Bearer {token}"}, {"flyte-authorization": f"Bearer {token}"}]
    methods = _methods()
    assert len(methods) >= 10
    creds = grpc.ssl_channel_credentials(root_certificates=svc.ca.read_bytes())
    with grpc.secure_channel(f"{svc.host}:{svc.port}", creds) as channel:
        for path, streaming in methods:
            for headers in refused:
                md = list(headers.items())
                assert _grpc_code(channel, path, streaming, md) == "UNAUTHENTICATED", (path, headers)
                assert _grpc_web_status(svc, path, headers) == "16", (path, headers)
                connect = svc.http.post(
                    f"{svc.url}{path}", content=b"{}", headers={"content-type": "application/json", **headers}
                )
                assert connect.status_code == 401 and connect.json()["code"] == "unauthenticated", path
                assert_no_secret(connect.text, token, foreign)
            for headers in accepted:
                code = _grpc_code(channel, path, streaming, list(headers.items()))
                assert code not in ("UNAUTHENTICATED", "UNKNOWN"), (path, code)
                assert _grpc_web_status(svc, path, headers) != "16", path
    assert_no_secret(svc.output(), token, foreign)


def test_api_key_is_shown_once_stored_hashed_and_deleting_it_revokes_its_tokens(svc: AuthService) -> None:
    key = svc.create_key("laptop")
    host, client_id, secret, org = parts(key)
    assert (host, client_id, org) == (svc.host, "laptop", "") and len(secret) >= 40
    listed = svc.cli("api-key", "list").stdout
    assert "laptop" in listed and svc.host in listed
    assert_no_secret(listed, secret)
    for path in svc.data_dir.glob("auth.db*"):
        assert path.stat().st_mode & 0o077 == 0, path
        assert secret.encode() not in path.read_bytes(), path
    token = svc.token(key)
    with sqlite3.connect(svc.data_dir / "auth.db") as db:  # only the token's hash is kept
        assert not db.execute("SELECT 1 FROM tokens WHERE hash = ?", (token,)).fetchall()
    path = "/flyteidl2.workflow.RunService/ListRuns"
    assert svc.connect(path, token).status_code == 200
    assert_no_secret(svc.cli("api-key", "create", "other", "--host", svc.host).stderr, secret)
    again = svc.cli("api-key", "create", "laptop", "--host", svc.host, check=False)
    assert again.returncode == 1 and "exists already" in again.stderr

    svc.cli("api-key", "delete", "laptop")
    refused = svc.connect(path, token)
    assert refused.status_code == 401 and "revoked" in refused.json()["message"], details(refused)
    no_key = svc.post_token(key)
    assert no_key.status_code == 401 and no_key.json()["error"] == "invalid_client", details(no_key)
    assert "deleted" in no_key.json()["error_description"]
    # A new key of the same name brings neither the old token nor the old secret back.
    svc.create_key("laptop")
    assert svc.connect(path, token).status_code == 401
    assert svc.post_token(key).status_code == 401
    missing = svc.cli("api-key", "delete", "nope", check=False)
    assert missing.returncode == 1 and "no API key named 'nope'" in missing.stderr
    assert_no_secret(svc.output(), secret, token)


def test_an_expired_token_is_refused_and_says_so(tmp_path: Path) -> None:
    # Tokens that expire as they are made, and no tolerance: every call sees an expired token.
    svc = AuthService(tmp_path, 0, "--token-ttl", "0", "--clock-skew", "0")
    try:
        token = svc.token(svc.create_key("ci"))
        refused = svc.connect("/flyteidl2.workflow.RunService/ListRuns", token)
        assert refused.status_code == 401, details(refused)
        assert "expired" in refused.json()["message"]
    finally:
        svc.stop()


def test_a_key_can_only_be_made_for_a_host_without_port_and_with_a_fair_name(svc: AuthService) -> None:
    for args, words in (
        (("bad:name", "--host", "h"), "cannot name an API key"),
        (("ok", "--host", "h:443"), "without scheme or port"),
        (("ok", "--host", "https://h"), "without scheme or port"),
    ):
        proc = svc.cli("api-key", "create", *args, check=False)
        assert proc.returncode == 1 and words in proc.stderr, proc.stderr
    assert svc.cli("api-key", "list").stdout == ""


def test_a_call_without_a_token_is_refused_before_its_body_is_read(svc: AuthService) -> None:
    """Headers that announce 100 MB and no body at all: the refusal comes without waiting for it."""
    context = ssl.create_default_context(cafile=svc.ca)
    with (
        socket.create_connection((svc.host, svc.port), timeout=20) as raw,
        context.wrap_socket(raw, server_hostname=svc.host) as tls,
    ):
        tls.sendall(
            b"POST /flyteidl2.workflow.RunService/ListRuns HTTP/1.1\r\n"
            + f"host: {svc.host}\r\n".encode()
            + b"content-type: application/json\r\ncontent-length: 100000000\r\n\r\n"
        )
        head = tls.recv(4096)  # a timeout here (20 s) means the service waited for the body
    assert head.startswith(b"HTTP/1.1 401"), head[:200]


def test_beyond_loopback_the_service_needs_auth_and_tls(tmp_path: Path) -> None:
    with pytest.raises(ExposureError, match=r"--auth .*--tls-cert"):
        check_exposure("0.0.0.0")
    with pytest.raises(ExposureError, match="add --tls-cert/--tls-key"):
        check_exposure("0.0.0.0", oauth=OAuthSettings())
    with pytest.raises(ExposureError, match="choose one"):
        check_exposure("127.0.0.1", token_file=tmp_path / "token", oauth=OAuthSettings())
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("CERT-BYTES-2b7f")
    key.write_text("PRIVATE-KEY-BYTES-9c1e")
    exposure = check_exposure("0.0.0.0", tls_cert=cert, tls_key=key, oauth=OAuthSettings(token_ttl=60))
    assert exposure.oauth is not None and exposure.oauth.token_ttl == 60 and exposure.token is None
    assert_no_secret(repr(exposure), "PRIVATE-KEY-BYTES-9c1e", "CERT-BYTES-2b7f")
