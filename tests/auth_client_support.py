"""The Run service with ``serve --auth`` over TLS, and its owner's command line, for the tests of
this package's client signing in (tests/test_auth_signin.py, tests/test_security.py).

    def test_x(auth_service):
        key = auth_service.key("laptop")        # flyte-run-widget api-key create laptop --host ...
        auth_service.cli("auth", "approve", code)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, _endpoint, _serve

import flyte_run_widget as frw

#: Keys and tokens a test saw: the service's output must hold none of them.
secrets_seen: list[str] = []


@dataclass
class AuthService:
    endpoint: str
    cert: Path
    data: Path
    proc: subprocess.Popen[str]

    def cli(self, *args: str) -> str:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))),
        }
        code = "import sys; from flyte_run_widget.cli import main; sys.exit(main(sys.argv[1:]))"
        done = subprocess.run(
            [sys.executable, "-c", code, *args, "--data-dir", str(self.data)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def key(self, name: str) -> str:
        return self.cli("api-key", "create", name, "--host", "127.0.0.1")


@pytest.fixture(name="auth_service")
def auth_service_fixture(
    request: pytest.FixtureRequest, tmp_path: Path, tls_files: tuple[Path, Path]
) -> Iterator[AuthService]:
    """The service with --auth and TLS, tokens of 3 s (``@pytest.mark.token_ttl(seconds)`` for
    others) and no grace past expiry, device logins polled every second."""
    marker = request.node.get_closest_marker("token_ttl")
    ttl = str(marker.args[0]) if marker else "3"
    cert, key = tls_files
    data = tmp_path / "data"
    proc = _serve(
        data,
        *("--host", "127.0.0.1", "--port", "0", "--auth", "--tls-cert", str(cert), "--tls-key", str(key)),
        *("--token-ttl", ttl, "--clock-skew", "0", "--device-interval", "1"),
    )
    service = AuthService("", cert, data, proc)
    try:
        service.endpoint = f"127.0.0.1:{_endpoint(proc, data).rsplit(':', 1)[1]}"
        yield service
    finally:
        frw.init("127.0.0.1:9", insecure=True)  # drop the signed-in client (nothing is dialled yet)
        proc.terminate()
        output, _ = proc.communicate(timeout=60)  # read as it goes: a full pipe would block it
    for secret in secrets_seen:
        assert secret not in output, "the service printed a secret"
    secrets_seen.clear()
