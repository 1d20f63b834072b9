"""Without ``frw.init()``, the widget's client uses the service the flyte SDK was initialised
with in this interpreter (``flyte.init``), follows it when the SDK is initialised again, and
gives way to an explicit ``frw.init()``."""

from __future__ import annotations

import pytest
from auth_client_support import auth_service_fixture  # noqa: F401 (a fixture)
from conftest import TOKEN
from sdk_env import clean_slate, require_flyte, sdk_speaks_grpc

import flyte_run_widget as frw
from flyte_run_widget.client.rpc import get_client
from flyte_run_widget.client.sdk_config import SOURCE

flyte = require_flyte()
pytestmark = pytest.mark.usefixtures("clean_slate")
__all__ = ["clean_slate"]  # a fixture, used by name


def add(a: int, b: int = 2) -> int:
    return a + b


def test_no_init_uses_the_sdk_service_and_follows_it(service) -> None:
    flyte.init(endpoint=service.endpoint, insecure=True, project="proj", domain="development")
    run = frw.run(add, a=40)
    run.wait(quiet=True)
    assert run.outputs()[0] == 42
    cfg = get_client().config
    assert (cfg.source, cfg.endpoint.target, cfg.insecure) == (SOURCE, service.endpoint, True)
    assert (cfg.project, cfg.domain) == ("proj", "development")
    assert frw.Run.get(run.name).phase == "succeeded"

    # flyte.init again: the next call follows the SDK.
    flyte.init(endpoint=service.endpoint, insecure=True, project="other", domain="staging")
    assert (get_client().config.project, get_client().config.domain) == ("other", "staging")
    with pytest.raises(frw.errors.RunNotFoundError):
        frw.Run.get(run.name)  # it is in proj/development

    # An explicit frw.init() wins, and stays.
    frw.init(service.endpoint, project="proj", domain="development")
    flyte.init(endpoint=service.endpoint, insecure=True, project="third", domain="production")
    assert get_client().config.project == "proj"
    assert frw.Run.get(run.name).phase == "succeeded"


def test_sdk_initialised_for_local_runs_only_is_not_taken(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no config.yaml here
    monkeypatch.delenv("FLYTECTL_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    flyte.init(project="proj", domain="development")  # no endpoint: local runs
    cfg = get_client().config
    assert cfg.source != SOURCE and cfg.embedded


def test_sdk_tls_with_its_ca_file_reaches_a_tls_service(exposed, monkeypatch) -> None:
    endpoint, cert = exposed
    monkeypatch.setenv("FLYTE_RUN_WIDGET_API_KEY", TOKEN)  # credentials are ours, not the SDK's
    flyte.init(endpoint=endpoint, ca_cert_file_path=str(cert), project="proj", domain="development")
    cfg = get_client().config
    assert cfg.source == SOURCE and not cfg.insecure
    if sdk_speaks_grpc(flyte):  # flyte 2.0.x keeps no CA path: the system's roots
        assert cfg.ca_cert is None and cfg.ca_pem is None
        return
    assert cfg.ca_cert == cert
    assert list(frw.Run.listall(limit=1)) == []


def test_sdk_skip_verify_trusts_what_the_sdk_fetched(exposed, monkeypatch) -> None:
    endpoint, _cert = exposed
    monkeypatch.setenv("FLYTE_RUN_WIDGET_API_KEY", TOKEN)
    flyte.init(endpoint=endpoint, insecure_skip_verify=True, project="proj", domain="development")
    cfg = get_client().config
    if sdk_speaks_grpc(flyte):  # flyte 2.0.x keeps no certificates to take over
        assert cfg.ca_cert is None and cfg.ca_pem is None
        return
    assert cfg.ca_cert is None and cfg.ca_pem and b"BEGIN CERTIFICATE" in cfg.ca_pem
    assert list(frw.Run.listall(limit=1)) == []


def test_sdk_client_credentials_sign_the_widget_in(auth_service, monkeypatch) -> None:
    """Whatever signs the SDK in signs the widget in: the SDK's ClientSecret settings give our
    client its own token from the service's token endpoint."""
    import base64

    from auth_client_support import secrets_seen

    monkeypatch.delenv("FLYTE_RUN_WIDGET_API_KEY", raising=False)
    key = auth_service.key("sdk-user")
    _host, client_id, secret, _org = base64.b64decode(key).decode().split(":", 3)
    secrets_seen.extend([key, secret])
    flyte.init(
        endpoint=auth_service.endpoint,
        ca_cert_file_path=str(auth_service.cert),
        auth_type="ClientSecret",
        client_id=client_id,
        client_credentials_secret=secret,
        project="proj",
        domain="development",
    )
    assert list(frw.Run.listall(limit=1)) == []
    client = get_client()
    creds = client.config.credentials
    assert client.config.source == SOURCE and creds is not None
    assert (creds.auth_type, creds.client_id) == ("ClientSecret", client_id)
    assert client._tokens is not None and client._tokens.requests == 1
    assert secret not in repr(client.config) + repr(creds)
