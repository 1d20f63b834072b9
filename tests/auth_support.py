"""A Run service started with ``serve --auth`` over TLS, its own CA, and its owner's command line,
for tests/test_auth_*.py and tests/test_sdk212_auth.py.

    svc = AuthService(tmp_path, port=443)       # a fresh loopback address 127.x.y.z, its own CA
    key = svc.cli("api-key", "create", "ci", "--host", svc.host).stdout.strip()
    token = svc.token(key)                     # client credentials at the token endpoint
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent


def loopback_address() -> str:
    """An address of 127.0.0.0/8 other than 127.0.0.1 (Linux routes all of it to lo), drawn at
    random so that tests running at once do not meet on port 443."""
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


def make_ca(folder: Path, ip: str) -> tuple[Path, Path, Path]:
    """(ca.pem, cert.pem, key.pem): a CA of the service's own and a server certificate for ``ip``
    it signed, as an owner would make them with openssl."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make the test CA (apt-get install openssl)"
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    cert, key, csr, ext = folder / "cert.pem", folder / "key.pem", folder / "leaf.csr", folder / "ext.cnf"

    def run(*argv: str) -> None:
        subprocess.run([openssl, *argv], check=True, capture_output=True)

    run(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=frw test CA"),
        *("-keyout", str(ca_key), "-out", str(ca)),
        *("-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    )
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={ip}", "-keyout", str(key), "-out", str(csr))
    ext.write_text(
        f"subjectAltName=IP:{ip},DNS:localhost\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    run(
        *("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial"),
        *("-days", "2", "-out", str(cert), "-extfile", str(ext)),
    )
    return ca, cert, key


def env_with_repo(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(extra or {})
    return env


def frw_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``flyte-run-widget ARGS`` as its owner would type it."""
    code = "import sys; from flyte_run_widget.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env_with_repo(), timeout=60
    )
    if check:
        assert proc.returncode == 0, f"flyte-run-widget {' '.join(args)}: {proc.stdout}{proc.stderr}"
    return proc


class AuthService:
    def __init__(self, folder: Path, port: int = 0, *extra: str, host: str | None = None) -> None:
        self.host = host or loopback_address()
        self.folder = folder
        self.ca, cert, key = make_ca(folder / "tls", self.host)
        self.data_dir = folder / "data"
        self.log_path = folder / "service.log"
        argv = [sys.executable, "-m", "flyte_run_widget.server", "--auth", "--host", self.host]
        argv += ["--port", str(port), "--data-dir", str(self.data_dir), "--tls-cert", str(cert)]
        argv += ["--tls-key", str(key), *extra]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env_with_repo())
        self.port = self._wait_started()
        self.url = f"https://{self.host}" + ("" if self.port == 443 else f":{self.port}")
        self.http = httpx.Client(verify=ssl.create_default_context(cafile=self.ca), timeout=30)

    def _wait_started(self) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                info = json.loads((self.data_dir / "server.json").read_text())
                if info["pid"] == self.proc.pid:
                    return int(info["endpoint"].rsplit(":", 1)[1])
            except (OSError, ValueError, KeyError):
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"the service did not start:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return frw_cli(*args, "--data-dir", str(self.data_dir), check=check)

    def create_key(self, name: str) -> str:
        return self.cli("api-key", "create", name, "--host", self.host).stdout.strip()

    def post_token(self, key: str, **form: str) -> httpx.Response:
        _host, client_id, secret, _ = base64.b64decode(key).decode().split(":", 3)
        return self.http.post(
            f"{self.url}/oauth2/token",
            data={"grant_type": "client_credentials", **form},
            auth=(client_id, secret),
        )

    def token(self, key: str) -> str:
        response = self.post_token(key)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def connect(self, path: str, token: str | None, body: bytes = b"{}", **headers: str) -> httpx.Response:
        """One Connect unary call in JSON (the JSON door)."""
        sent = {"content-type": "application/json", **headers}
        if token is not None:
            sent["authorization"] = f"Bearer {token}"
        return self.http.post(f"{self.url}{path}", content=body, headers=sent)

    def stop(self) -> str:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.output()


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret and secret not in text, f"a secret ({secret[:4]}…) appears in: {text[:2000]}"


def parts(key: str) -> list[str]:
    return base64.b64decode(key).decode().split(":", 3)


def details(response: Any) -> str:
    return f"{response.status_code} {response.text[:500]}"
