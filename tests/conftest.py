"""Shared fixtures: a real local Run service in a subprocess, and container task specs.

def test_something(service):
    stub = RunServiceStub(grpc.insecure_channel(service.endpoint))
    ...
    service.restart()     # same data folder, new process and port

def test_restart(fixed_service):
    fixed_service.kill()  # SIGKILL
    fixed_service.start() # same data folder and port

def test_exposed(exposed):
    endpoint, cert = exposed  # every interface, token TOKEN (in tmp_path / "token"), TLS
    frw.init(endpoint, ca_cert=cert, api_key=TOKEN)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

import grpc
import pytest
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.core import identifier_pb2, literals_pb2, tasks_pb2
from flyteidl2.logs.dataplane import payload_pb2
from flyteidl2.task import common_pb2, run_pb2, task_definition_pb2
from flyteidl2.workflow import (
    run_definition_pb2,
    run_logs_service_pb2,
    run_logs_service_pb2_grpc,
    run_service_pb2,
    run_service_pb2_grpc,
)
from google.protobuf import duration_pb2

REPO = Path(__file__).resolve().parents[1]


def skip_or_fail(reason: str) -> NoReturn:
    """Skip a test whose prerequisite (a browser, a package, the flyte SDK environment) is
    missing here; under ``CI=true`` fail it instead, since nothing in CI may pass by skipping."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing prerequisite is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


class LocalService:
    """The local Run service running as ``python -m flyte_run_widget.server``."""

    def __init__(self, data_dir: Path, abort_grace: float = 2.0, args: Sequence[str] = ()) -> None:
        self.data_dir = data_dir
        self.abort_grace = abort_grace
        self.args = list(args)  # more command-line options, e.g. ["--max-running", "1"]
        self.endpoint = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def log_path(self) -> Path:
        return self.data_dir / "service-test.log"

    def start(self, timeout: float = 20) -> str:
        server_file = self.data_dir / "server.json"
        if server_file.exists():
            server_file.unlink()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "flyte_run_widget.server",
                    "--port",
                    "0",
                    "--data-dir",
                    str(self.data_dir),
                    "--abort-grace",
                    str(self.abort_grace),
                    *self.args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                info = json.loads(server_file.read_text())
                if info["pid"] == self.proc.pid:
                    self.endpoint = str(info["endpoint"])
                    return self.endpoint
            except (OSError, ValueError, KeyError):
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"the Run service did not start:\n{self.log_path.read_text()}")

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM (a clean stop) and wait; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> None:
        """SIGKILL: the service gets no chance to clean up."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self) -> str:
        """Stop cleanly (if running) and start again on the same data folder."""
        self.stop()
        return self.start()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LocalService]:
    svc = LocalService(tmp_path / "data")
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture
def tree_service(tmp_path: Path) -> Iterator[LocalService]:
    """A service running at most 6 child actions at once, with the package's client set to it
    (project "treeproj", domain "development"): the action-tree tests."""
    import flyte_run_widget as frw

    svc = LocalService(tmp_path / "data", args=["--max-child-actions", "6"])
    frw.init(svc.endpoint, project="treeproj", domain="development")
    try:
        yield svc
    finally:
        svc.stop()


class FixedPortService(LocalService):
    """The service restarted on the same port, as a client configured with it expects."""

    def __init__(self, data_dir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        super().__init__(data_dir)

    def start(self, timeout: float = 20) -> str:
        (self.data_dir / "server.json").unlink(missing_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "flyte_run_widget.server", "--port", str(self.port)]
        argv += ["--data-dir", str(self.data_dir), "--abort-grace", str(self.abort_grace), *self.args]
        deadline = time.monotonic() + timeout
        while True:  # the port may take a moment to be free again after a kill
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
            while time.monotonic() < deadline and self.proc.poll() is None:
                if (self.data_dir / "server.json").exists():
                    self.endpoint = f"127.0.0.1:{self.port}"
                    return self.endpoint
                time.sleep(0.02)
            if time.monotonic() >= deadline:
                self.kill()
                raise RuntimeError(f"the Run service did not start:\n{self.log_path.read_text()}")
            time.sleep(0.2)


@pytest.fixture
def fixed_service(tmp_path: Path) -> Iterator[FixedPortService]:
    """A service that ``kill()`` (SIGKILL) and ``start()`` bring back on the same port and data
    folder, so clients configured with its endpoint can reconnect."""
    svc = FixedPortService(tmp_path / "data")
    try:
        yield svc
    finally:
        svc.stop()


# -- a service beyond loopback: token and TLS (tests/test_security.py, tests/browser) ------

TOKEN = "frw-test-token-5c1f0a9e7b3d42e8"
SECRET = "frw-service-secret-0d9e41c6"


def _serve(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full_env = dict(os.environ if env is None else env)
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), full_env.get("PYTHONPATH")) if p)
    return subprocess.Popen(
        [sys.executable, "-m", "flyte_run_widget.server", "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=full_env,
    )


def _endpoint(proc: subprocess.Popen[str], data_dir: Path) -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            info = json.loads((data_dir / "server.json").read_text())
            if info["pid"] == proc.pid:
                return str(info["endpoint"])
        except (OSError, ValueError, KeyError):
            pass
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.02)
    raise AssertionError("the service did not start")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, made by openssl."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make a test certificate (apt-get install openssl)"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    argv = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"]
    argv += ["-keyout", str(key), "-out", str(cert), "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
    # A server certificate, not a CA (openssl's default): rustls (the Connect transport's TLS)
    # refuses a CA certificate presented as the server's.
    argv += ["-addext", "basicConstraints=critical,CA:FALSE"]
    subprocess.run(
        argv,
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def exposed(tmp_path: Path, tls_files: tuple[Path, Path]) -> Iterator[tuple[str, Path]]:
    """The service on every interface, with a token and TLS, and a secret in its environment."""
    cert, key = tls_files
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    data = tmp_path / "data"
    env = {**os.environ, "FRW_SERVICE_SECRET": SECRET}
    proc = _serve(
        data,
        *("--host", "0.0.0.0", "--port", "0", "--token-file", str(token_file)),
        *("--tls-cert", str(cert), "--tls-key", str(key)),
        env=env,
    )
    try:
        port = _endpoint(proc, data).rsplit(":", 1)[1]
        yield f"127.0.0.1:{port}", cert
    finally:
        proc.terminate()
        proc.wait(30)
    # The service's own output (its log) holds neither its token, its secrets, nor the keys
    # clients tried (tests/test_security.py sends these wrong ones).
    output = proc.stdout.read() if proc.stdout else ""
    assert "listening" in output, output
    for secret in (TOKEN, SECRET, "wrong-token-wrong-token", "not-the-token-but-secret-anyway-42"):
        assert secret not in output, f"the service printed a secret: {output}"


def container_task(
    command: Sequence[str],
    *,
    name: str = "tests.task",
    version: str = "v1",
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    retries: int = 0,
) -> task_definition_pb2.TaskSpec:
    """A TaskSpec whose template runs ``command`` (templates like ``{{.Outputs}}`` allowed)."""
    metadata = tasks_pb2.TaskMetadata(retries=literals_pb2.RetryStrategy(retries=retries))
    if timeout is not None:
        metadata.timeout.CopyFrom(duration_pb2.Duration(nanos=0, seconds=0))
        metadata.timeout.FromNanoseconds(int(timeout * 1e9))
    template = tasks_pb2.TaskTemplate(
        id=identifier_pb2.Identifier(resource_type=identifier_pb2.TASK, name=name, version=version),
        type="container",
        metadata=metadata,
        container=tasks_pb2.Container(
            image="local",
            command=list(command),
            env=[literals_pb2.KeyValuePair(key=k, value=v) for k, v in (env or {}).items()],
        ),
    )
    return task_definition_pb2.TaskSpec(task_template=template, short_name=name.rsplit(".", 1)[-1])


def python_task(code: str, *extra_args: str, **kwargs: object) -> task_definition_pb2.TaskSpec:
    """A task running ``python -c code extra_args...`` with the test's interpreter."""
    return container_task([sys.executable, "-c", code, *extra_args], **kwargs)  # type: ignore[arg-type]


class ServiceClient:
    """Raw flyteidl2 stubs over one sync channel, plus the few steps every test repeats."""

    def __init__(self, endpoint: str) -> None:
        self.channel = grpc.insecure_channel(endpoint)
        self.runs = run_service_pb2_grpc.RunServiceStub(self.channel)
        self.logs = run_logs_service_pb2_grpc.RunLogsServiceStub(self.channel)

    def create(
        self,
        task: task_definition_pb2.TaskSpec,
        *,
        name: str | None = None,
        project: str = "proj",
        domain: str = "development",
        inputs: common_pb2.Inputs | None = None,
        labels: dict[str, str] | None = None,
    ) -> run_definition_pb2.Run:
        """CreateRun; returns the response's ``Run``."""
        request = run_service_pb2.CreateRunRequest(
            task_spec=task, run_spec=run_pb2.RunSpec(labels=run_pb2.Labels(values=labels or {}))
        )
        if name is None:
            request.project_id.CopyFrom(ids.ProjectIdentifier(name=project, domain=domain))
        else:
            request.run_id.CopyFrom(ids.RunIdentifier(project=project, domain=domain, name=name))
        if inputs is not None:
            request.inputs.CopyFrom(inputs)
        return self.runs.CreateRun(request, timeout=10).run

    def wait(self, action_id: ids.ActionIdentifier, timeout: float = 30) -> run_definition_pb2.ActionDetails:
        """Follow WatchActionDetails to its end; the last ActionDetails."""
        last = None
        request = run_service_pb2.WatchActionDetailsRequest(action_id=action_id)
        for response in self.runs.WatchActionDetails(request, timeout=timeout):
            last = response.details
        assert last is not None, "WatchActionDetails sent nothing"
        return last

    def log_lines(
        self, action_id: ids.ActionIdentifier, attempt: int = 0, timeout: float = 60
    ) -> list[payload_pb2.LogLine]:
        """Every LogLine TailLogs sends for the attempt (0 = latest)."""
        request = run_logs_service_pb2.TailLogsRequest(action_id=action_id, attempt=attempt)
        lines: list[payload_pb2.LogLine] = []
        for response in self.logs.TailLogs(request, timeout=timeout):
            for logs in response.logs:
                lines.extend(logs.lines)
        return lines

    def close(self) -> None:
        self.channel.close()


@pytest.fixture
def client(service: LocalService) -> Iterator[ServiceClient]:
    c = ServiceClient(service.endpoint)
    try:
        yield c
    finally:
        c.close()
