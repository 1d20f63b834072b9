"""Who may reach the service, and where secrets never show up.

A service beyond loopback needs a token and TLS; every RPC without the right bearer token is
refused with UNAUTHENTICATED. The notebook's API key stays out of reprs, widget state, the static
snapshot, error messages, the service and its tasks; tasks see only the environment they are given.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from pathlib import Path

import grpc
import pytest
from auth_client_support import AuthService, auth_service_fixture  # noqa: F401 (a fixture)
from conftest import SECRET, TOKEN, LocalService, ServiceClient, _serve, python_task
from flyteidl2.cluster import service_pb2 as cluster_service_pb2
from flyteidl2.common import phase_pb2
from flyteidl2.dataproxy import dataproxy_service_pb2
from flyteidl2.workflow import run_logs_service_pb2, run_service_pb2

import flyte_run_widget as frw
from flyte_run_widget import errors
from flyte_run_widget.server.auth import ExposureError, check_exposure, load_token


def _refused(data_dir: Path, *args: str) -> str:
    proc = _serve(data_dir, *args)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1, out
    return out


# -- listening beyond loopback ------------------------------------------------------------------


def test_listening_beyond_loopback_needs_a_token_and_tls(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    out = _refused(tmp_path / "d", "--host", "0.0.0.0")
    assert "--token-file" in out and "--tls-cert" in out and "127.0.0.1" in out
    token = tmp_path / "token"
    out = _refused(tmp_path / "d", "--host", "0.0.0.0", "--token-file", str(token))
    assert "--tls-cert" in out and "--token-file" not in out
    cert, _ = tls_files
    out = _refused(tmp_path / "d", "--host", "0.0.0.0", "--tls-cert", str(cert))
    assert "both --tls-cert and --tls-key" in out
    assert not (tmp_path / "d" / "server.json").exists()


def test_missing_token_file_is_created_private_and_random(tmp_path: Path) -> None:
    path = tmp_path / "token"
    first = load_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32 and load_token(path) == first
    other = tmp_path / "other"
    assert load_token(other) != first


def test_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN)
    path.chmod(0o644)
    with pytest.raises(ExposureError, match=r"chmod 600"):
        load_token(path)
    path.chmod(0o600)
    path.write_text("short")
    with pytest.raises(ExposureError, match="at least 16 characters"):
        load_token(path)


def test_loopback_needs_nothing_and_keeps_plain_text() -> None:
    exposure = check_exposure("127.0.0.1")
    assert exposure.token is None and exposure.tls is None


def test_default_embedded_service_listens_on_loopback_only(service) -> None:
    host = service.endpoint.rsplit(":", 1)[0]
    assert host == "127.0.0.1"


# -- every RPC needs the token ------------------------------------------------------------------


def _all_methods() -> list[tuple[str, bool]]:
    out = []
    # Every service the port answers: the data-plane ones (SelectCluster, the data proxy) too.
    for module in (run_service_pb2, run_logs_service_pb2, cluster_service_pb2, dataproxy_service_pb2):
        for svc in module.DESCRIPTOR.services_by_name.values():
            for method in svc.methods:
                out.append((f"/{svc.full_name}/{method.name}", method.server_streaming))
    return out


def _call(
    channel: grpc.Channel, path: str, streaming: bool, metadata: list[tuple[str, str]]
) -> grpc.StatusCode:
    try:
        if streaming:
            call = channel.unary_stream(path)(b"", metadata=metadata, timeout=3)
            for _ in call:
                break
            call.cancel()
        else:
            channel.unary_unary(path)(b"", metadata=metadata, timeout=3)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.UNAUTHENTICATED:
            assert TOKEN not in (e.details() or "") and "wrong" not in (e.details() or "")
            assert "--token-file" in (e.details() or "")
        return e.code()
    return grpc.StatusCode.OK


def test_every_rpc_without_the_right_token_is_unauthenticated(exposed: tuple[str, Path]) -> None:
    endpoint, cert = exposed
    creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    methods = _all_methods()
    assert len(methods) >= 10
    with grpc.secure_channel(endpoint, creds) as channel:
        for path, streaming in methods:
            for md in ([], [("authorization", "Bearer wrong-token-wrong-token")], [("authorization", TOKEN)]):
                assert _call(channel, path, streaming, md) == grpc.StatusCode.UNAUTHENTICATED, (path, md)
            code = _call(channel, path, streaming, [("authorization", f"Bearer {TOKEN}")])
            assert code != grpc.StatusCode.UNAUTHENTICATED, path
            assert code != grpc.StatusCode.UNKNOWN, path


def test_plain_text_to_the_tls_service_fails_fast_in_words(exposed: tuple[str, Path]) -> None:
    endpoint, _ = exposed
    frw.init(endpoint, insecure=True)
    started = time.monotonic()
    with pytest.raises(errors.ServiceUnavailableError, match="TLS"):
        list(frw.Run.listall())
    assert time.monotonic() - started < 5


def test_client_with_key_and_ca_cert_runs_tasks_and_keeps_secrets(
    exposed: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The notebook's key and the service's own environment stay out of the task; the task gets
    the environment it is given; the key appears in no repr, widget state or snapshot."""
    endpoint, cert = exposed
    cfg = frw.init(endpoint, ca_cert=cert, api_key=TOKEN, project="proj")
    assert not cfg.insecure
    os.environ["FLYTE_RUN_WIDGET_API_KEY"] = TOKEN  # as a notebook user might have it set
    try:
        run = frw.run(frw.Task(_print_environment, name="sec.dump", env={"GIVEN": "yes"}))
        run.wait()
        assert run.phase == "succeeded"
        capsys.readouterr()
        run.show_logs(raw=True, max_lines=10_000)
        logs = capsys.readouterr().out
    finally:
        del os.environ["FLYTE_RUN_WIDGET_API_KEY"]
    assert "GIVEN=yes" in logs and "PATH=" in logs
    assert TOKEN not in logs and SECRET not in logs and "FRW_SERVICE_SECRET" not in logs

    from flyte_run_widget.notebook.widget import RunWidget

    widget = RunWidget(run)
    try:
        shown = [repr(cfg), repr(run), str(run.to_dict()), run.to_json()]
        shown.append(json.dumps(widget.get_state(), default=str))
        bundle = widget._repr_mimebundle_()
        shown.append(json.dumps(bundle, default=str))
        shown.append(json.dumps(run._repr_mimebundle_(), default=str))
    finally:
        widget.close()
    for text in shown:
        assert TOKEN not in text


def test_wrong_key_error_names_the_fix_not_the_key(exposed: tuple[str, Path]) -> None:
    endpoint, cert = exposed
    wrong = "not-the-token-but-secret-anyway-42"
    frw.init(endpoint, ca_cert=cert, api_key=wrong)
    with pytest.raises(errors.AuthenticationError) as info:
        list(frw.Run.listall())
    text = f"{info.value} {info.value!r}"
    assert wrong not in text and TOKEN not in text
    assert "api_key" in text and "FLYTE_RUN_WIDGET_API_KEY" in text


def test_tasks_get_only_the_environment_they_are_given(tmp_path: Path) -> None:
    """On the default loopback service too: the service's environment is not the task's."""
    os.environ["FRW_SERVICE_SECRET"] = SECRET
    try:
        svc = LocalService(tmp_path / "data")
    finally:
        del os.environ["FRW_SERVICE_SECRET"]
    try:
        client = ServiceClient(svc.endpoint)
        code = "import os; print(*sorted(f'{k}={v}' for k, v in os.environ.items()), sep='\\n')"
        run = client.create(python_task(code, env={"GIVEN": "yes"}))
        assert client.wait(run.action.id).status.phase == phase_pb2.ACTION_PHASE_SUCCEEDED
        text = "\n".join(_raw_lines(client, run.action.id))
        client.close()
    finally:
        svc.stop()
    assert "GIVEN=yes" in text
    assert SECRET not in text and "FRW_SERVICE_SECRET" not in text


def _print_environment() -> None:
    for key, value in sorted(os.environ.items()):
        print(f"{key}={value}")


def _raw_lines(client: ServiceClient, action_id) -> list[str]:
    request = run_logs_service_pb2.TailLogsRequest(action_id=action_id, attempt=1)
    lines = []
    for response in client.logs.TailLogs(request, timeout=10):
        for batch in response.logs:
            lines.extend(line.message for line in batch.lines)
    return lines


def test_embedded_service_wants_its_own_token_and_the_client_sends_it(tmp_path: Path) -> None:
    """Another local user can reach loopback; without the owner-only token they are refused.
    The client uses the embedded token, never a remote service's key from the environment."""
    data = tmp_path / "embedded"
    os.environ["FLYTE_RUN_WIDGET_API_KEY"] = "key-of-a-remote-service-7f3a9c"
    try:
        cfg = frw.init(data_dir=data, project="proj")
    finally:
        del os.environ["FLYTE_RUN_WIDGET_API_KEY"]
    try:
        token = (data / "service.token").read_text().strip()
        assert cfg.embedded and cfg.api_key == token and token not in repr(cfg)
        run = frw.run(frw.Task(_print_environment, name="sec.embedded"))
        run.wait()
        assert run.phase == "succeeded"
        with grpc.insecure_channel(cfg.endpoint.target) as channel:
            assert _call(channel, "/flyteidl2.workflow.RunService/ListRuns", False, []) == (
                grpc.StatusCode.UNAUTHENTICATED
            )
    finally:
        pid = json.loads((data / "server.json").read_text())["pid"]
        os.kill(pid, signal.SIGTERM)


# -- signing in (serve --auth): keys, secrets and tokens stay out of everything shown ----------


def test_signed_in_client_shows_no_key_secret_or_token(
    auth_service: AuthService,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """An API key, the secret in it and the tokens it gets, and a device login's token: in no
    repr, widget state (the sign-in panel included), display bundle, error, log record or output."""
    import base64
    import logging
    import threading

    from auth_client_support import secrets_seen

    from flyte_run_widget.client import sign_in
    from flyte_run_widget.client.rpc import get_client
    from flyte_run_widget.notebook.sign_in_view import _widget_class, as_trait
    from flyte_run_widget.notebook.widget import RunWidget

    caplog.set_level(logging.DEBUG)
    key = auth_service.key("notebook")
    secret = base64.b64decode(key).decode().split(":", 3)[2]
    secrets_seen.extend([key, secret])
    cfg = frw.init(auth_service.endpoint, ca_cert=auth_service.cert, api_key=key, project="proj")
    run = frw.run(frw.Task(_print_environment, name="sec.signed_in"))
    run.wait(quiet=True)
    client = get_client()
    assert client._bearer is not None
    tokens = [client._bearer[1].split()[-1]]
    widget = RunWidget(run)
    shown = [repr(cfg), str(cfg), repr(cfg.credentials), repr(client._tokens), repr(run), run.to_json()]
    wrong = base64.b64encode(f"127.0.0.1:notebook:{'y' * len(secret)}:".encode()).decode()
    try:
        shown += [
            json.dumps(widget.get_state(), default=str),
            json.dumps(widget._repr_mimebundle_(), default=str),
        ]
        shown.append(json.dumps(run._repr_mimebundle_(), default=str))
        frw.init(auth_service.endpoint, ca_cert=auth_service.cert, api_key=wrong, project="proj")
        with pytest.raises(errors.SignInError) as info:
            list(frw.Run.listall())
        shown += [str(info.value), repr(info.value), str(info.value.details)]

        # A device login while the widget is on screen: its panel gets the link and the code only.
        config = tmp_path / "device.yaml"
        config.write_text(
            f"admin:\n  endpoint: dns:///{auth_service.endpoint}\n  authType: DeviceFlow\n"
            f"  caCertFilePath: {auth_service.cert}\ntask:\n  project: proj\n"
        )
        panels: list[dict[str, object]] = []
        owners: list[threading.Thread] = []

        def approve(prompt: sign_in.SignInPrompt | None) -> None:
            if prompt is None:
                return
            panels.append(dict(widget.sign_in))
            shown.append(json.dumps(widget.get_state(), default=str))
            shown.append(json.dumps(_widget_class()(sign_in=as_trait(prompt)).get_state(), default=str))
            owner = threading.Thread(target=auth_service.cli, args=("auth", "approve", prompt.code))
            owners.append(owner)
            owner.start()

        remove = sign_in.add_listener(approve)
        try:
            frw.init(config_file=config)
            list(frw.Run.listall())
        finally:
            remove()
            for owner in owners:
                owner.join(60)
        assert get_client()._bearer is not None
        tokens.append(get_client()._bearer[1].split()[-1])  # type: ignore[index]
        assert len(panels) == 1 and set(panels[0]) == {"url", "code", "endpoint"}
        assert widget.sign_in == {}  # answered: the panel is gone
    finally:
        widget.close()
    secrets_seen.extend(tokens)
    out = capfd.readouterr()
    shown += [caplog.text, out.out, out.err]
    for text in shown:
        for hidden in (key, secret, wrong, *tokens):
            assert hidden not in text
