"""Credentials read as the flyte SDK reads them: API keys (the argument, then $FLYTE_API_KEY), the
config file's admin.* auth keys, and the SDK's config search order."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import pytest

from flyte_run_widget.client.config import build_config, find_config_file
from flyte_run_widget.client.credentials import decode_api_key
from flyte_run_widget.errors import ConfigError

SECRET = "s3cr+et/=ü"  # URL-special and non-ASCII characters (a colon would end it: the SDK splits there)


def key(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture(autouse=True)
def _no_outside_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    names = ("FLYTE_API_KEY", "UCTL_CONFIG", "FLYTECTL_CONFIG", "FLYTE_RUN_WIDGET_API_KEY", "FLYTE_AUTH_TYPE")
    names += ("FLYTE_ADMIN_AUTHTYPE", "FLYTE_AUTH_COMMAND", "FLYTE_ADMIN_COMMAND")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)


def test_api_key_gives_endpoint_org_and_client_credentials() -> None:
    cfg = build_config(api_key=key(f"flyte.example.com:my-app:{SECRET}:acme"))
    assert (cfg.endpoint.host, cfg.endpoint.port, cfg.insecure) == ("flyte.example.com", 443, False)
    assert cfg.org == "acme"
    assert cfg.api_key is None  # the key itself is never sent
    assert cfg.credentials is not None
    assert (cfg.credentials.auth_type, cfg.credentials.client_id) == ("ClientSecret", "my-app")
    assert cfg.credentials.client_secret == SECRET


def test_empty_or_none_org_is_no_org() -> None:
    assert build_config(api_key=key("h.example:c:s:")).org == ""
    assert build_config(api_key=key("h.example:c:s:None")).org == ""


def test_flyte_api_key_variable_is_used_without_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    (Path("config.yaml")).write_text("admin:\n  endpoint: dns:///other.example:8089\n")
    monkeypatch.setenv("FLYTE_API_KEY", key("env.example:cid:sec:o"))
    cfg = build_config()
    assert cfg.endpoint.target == "env.example:443"
    assert cfg.credentials is not None and cfg.credentials.source == "$FLYTE_API_KEY"
    # The argument comes first, as in the SDK.
    assert build_config(api_key=key("arg.example:cid:sec:o")).endpoint.host == "arg.example"


def test_port_is_derived_as_the_sdk_derives_it() -> None:
    """The SDK turns the key's host into dns:///host, then https://host: port 443. Compared with the
    SDK itself when its environment is there."""
    sdk = os.environ.get("FRW_SDK212_PYTHON")
    hosts = ["flyte.example.com", "localhost", "127.0.0.1"]
    ours = [build_config(api_key=key(f"{h}:c:s:o")).endpoint for h in hosts]
    assert [(e.host, e.port) for e in ours] == [(h, 443) for h in hosts]
    assert all(not build_config(api_key=key(f"{h}:c:s:o")).insecure for h in hosts)  # always TLS
    if not sdk or not Path(sdk).exists():
        pytest.skip("FRW_SDK212_PYTHON is not set: the SDK's own derivation is not compared")
    code = (
        "import sys, base64\n"
        "from urllib.parse import urlsplit\n"
        "from flyte.remote._client.auth._auth_utils import decode_api_key\n"
        "from flyte._utils import sanitize_endpoint\n"
        "from flyte.remote._client.auth._session import normalize_rpc_endpoint\n"
        "for k in sys.argv[1:]:\n"
        "    ep = normalize_rpc_endpoint(sanitize_endpoint(decode_api_key(k)[0]))\n"
        "    u = urlsplit(ep); print(u.hostname, u.port or {'https': 443, 'http': 80}[u.scheme])\n"
    )
    out = subprocess.run(
        [sdk, "-c", code, *(key(f"{h}:c:s:o") for h in hosts)], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert [line.split() for line in out if line] == [[e.host, str(e.port)] for e in ours]


@pytest.mark.parametrize(
    "bad, says",
    [
        ("not base64 at all!", "not base64"),
        (key("host:only-three:parts"), "not 4"),
        (key(":cid:sec:org"), "no usable host"),
        (key("https://host:cid:sec:org"), "no usable host"),
        (key(f"host::{SECRET}:org"), "empty client id"),
        (base64.b64encode(b"\xff\xfe:a:b:c").decode(), "not base64 of UTF-8"),
    ],
)
def test_malformed_flyte_api_key_says_why_without_quoting_it(
    monkeypatch: pytest.MonkeyPatch, bad: str, says: str
) -> None:
    monkeypatch.setenv("FLYTE_API_KEY", bad)
    with pytest.raises(ConfigError, match=says) as info:
        build_config()
    text = str(info.value)
    assert "FLYTE_API_KEY" in text and "base64" in text
    assert bad not in text and SECRET not in text
    with pytest.raises(ConfigError):
        decode_api_key(bad)


def test_key_repr_hides_the_secret() -> None:
    parsed = decode_api_key(key(f"h.example:cid:{SECRET}:o"))
    cfg = build_config(api_key=key(f"h.example:cid:{SECRET}:o"))
    for text in (repr(parsed), repr(cfg), repr(cfg.credentials), str(cfg)):
        assert SECRET not in text


def _write(path: Path, endpoint: str, admin: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"admin:\n  endpoint: dns:///{endpoint}\n{admin}")
    return path


def test_config_search_order_is_the_sdks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "home"
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    monkeypatch.chdir(repo / "sub")
    order = [
        _write(repo / "sub" / "config.yaml", "one:1"),
        _write(repo / "sub" / ".flyte" / "config.yaml", "two:2"),
        _write(repo / ".flyte" / "config.yaml", "three:3"),
        _write(tmp_path / "uctl.yaml", "four:4"),
        _write(tmp_path / "flytectl.yaml", "five:5"),
        _write(home / ".union" / "config.yaml", "six:6"),
        _write(home / ".flyte" / "config.yaml", "seven:7"),
    ]
    monkeypatch.setenv("UCTL_CONFIG", str(order[3]))
    monkeypatch.setenv("FLYTECTL_CONFIG", str(order[4]))
    found = []
    for path in order:
        hit = find_config_file()
        assert hit is not None
        found.append(hit.resolve())
        if path == order[3]:
            monkeypatch.delenv("UCTL_CONFIG")
        elif path == order[4]:
            monkeypatch.delenv("FLYTECTL_CONFIG")
        else:
            path.unlink()
    assert found == [p.resolve() for p in order]
    assert find_config_file() is None


def test_a_variable_naming_a_missing_file_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UCTL_CONFIG", "/nonexistent/uctl.yaml")
    with pytest.raises(ConfigError, match="UCTL_CONFIG"):
        find_config_file()


def test_config_auth_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET + "\n")
    path = _write(
        Path("config.yaml"),
        "flyte.example.com",
        f"  authType: Pkce\n  clientId: app\n  clientSecretLocation: {secret_file}\n"
        "  scopes: [all, offline]\n",
    )
    cfg = build_config()
    creds = cfg.credentials
    assert creds is not None
    # A secret makes it ClientSecret whatever authType says (PlatformConfig.auto).
    assert (creds.auth_type, creds.client_id, creds.client_secret) == ("ClientSecret", "app", SECRET)
    assert creds.scopes == ("all", "offline") and creds.source == str(path)
    monkeypatch.setenv("MY_SECRET", "from-env")
    by_env = "  authType: ClientSecret\n  clientId: app\n  clientSecretEnvVar: MY_SECRET\n"
    _write(path, "flyte.example.com", by_env)
    assert build_config().credentials.client_secret == "from-env"  # type: ignore[union-attr]
    _write(path, "flyte.example.com", "  authType: deviceflow\n  scopes: 'a, b'\n")
    device = build_config().credentials
    assert device is not None and (device.auth_type, device.scopes) == ("DeviceFlow", ("a", "b"))
    # The variables come first, as in the SDK.
    monkeypatch.setenv("FLYTE_AUTH_TYPE", "ExternalCommand")
    _write(path, "flyte.example.com", "  authType: DeviceFlow\n  command: [get-token, --for, x]\n")
    command = build_config().credentials
    assert command is not None and command.auth_type == "ExternalCommand"
    assert command.command == ("get-token", "--for", "x")
    assert "get-token" not in repr(command)


@pytest.mark.parametrize(
    "admin, says",
    [
        ("  authType: Basic\n", "not one of ClientSecret"),
        ("  authType: ClientSecret\n  clientId: app\n", "needs admin.clientId and a secret"),
        ("  authType: ExternalCommand\n", "needs admin.command"),
        ("  authType: ClientSecret\n  clientId: a\n  clientSecretLocation: /nonexistent/s\n", "be read"),
    ],
)
def test_config_auth_mistakes_are_config_errors(admin: str, says: str) -> None:
    _write(Path("config.yaml"), "flyte.example.com", admin)
    with pytest.raises(ConfigError, match=says):
        build_config()


def test_no_auth_keys_no_credentials_and_no_token_in_clear_text() -> None:
    _write(Path("config.yaml"), "flyte.example.com")
    assert build_config().credentials is None
    with pytest.raises(ConfigError, match="clear text"):
        build_config("http://flyte.example.com:80", api_key=key("flyte.example.com:c:s:o"))
