"""``flyte-run-widget serve`` refuses what it cannot do with one clear line, exit code 1 (2 for
arguments argparse rejects), and leaves nothing behind."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, _serve

from flyte_run_widget.server import command


def serve_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    }
    return subprocess.run(
        [sys.executable, "-m", "flyte_run_widget", "serve", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=timeout,
    )


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="serve")
    command.add_arguments(parser)  # what `flyte-run-widget serve` and `-m ...server` both use
    return parser


@pytest.mark.parametrize("port", ["99999", "70000", "-1", "65536", "http", "8o8o"])
def test_a_port_out_of_range_is_refused(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        serve_parser().parse_args(["--port", port])
    assert exit_.value.code == 2
    message = capsys.readouterr().err.splitlines()[-1]
    assert (
        message
        == f"serve: error: argument --port: {port!r} is not a port: use 1 to 65535, or 0 for a free one"
    )


@pytest.mark.parametrize("port", ["0", "1", "8090", "65535"])
def test_a_port_in_range_is_taken(port: str) -> None:
    assert serve_parser().parse_args(["--port", port]).port == int(port)


def test_the_cli_exits_2_on_a_bad_port_and_creates_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = serve_cli("--port", "99999", "--data-dir", str(data), timeout=60)
    assert done.returncode == 2, done
    assert "argument --port: '99999' is not a port" in done.stderr
    assert "Traceback" not in done.stderr
    assert not data.exists()


# Runs in a new interpreter, which then becomes the service: a preexec_fn would run Python in a
# fork of this test process, whose gRPC threads (earlier tests') leave a state a fork must not touch.
SERVE_80 = ["-m", "flyte_run_widget", "serve", "--port", "80"]
_WITHOUT_BIND_SERVICE = """
import ctypes, os, sys
# Lose the right to listen below port 1024, even as root (the capability leaves the bounding set,
# so the exec'd service does not get it back).
if os.geteuid() == 0 and ctypes.CDLL(None, use_errno=True).prctl(24, 10, 0, 0, 0) != 0:
    raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, CAP_NET_BIND_SERVICE) failed")
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""


def assert_refused(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit code 1 and one line on stderr, naming the cause and the fix."""
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    for word in words:
        assert word in line, line
    return line


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_port_in_use(tmp_path: Path, busy_port: int) -> None:
    data, token = tmp_path / "new" / "data", tmp_path / "token"
    done = serve_cli("--port", str(busy_port), "--data-dir", str(data), "--token-file", str(token))
    assert_refused(done, f"port {busy_port}", "in use", "--port 0")
    assert list(tmp_path.iterdir()) == [], "something was created on the way"


def test_an_address_not_of_this_machine(tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    data, token = tmp_path / "data", tmp_path / "token"
    done = serve_cli(
        *("--host", "192.0.2.1", "--port", "0", "--data-dir", str(data), "--token-file", str(token)),
        *("--tls-cert", str(cert), "--tls-key", str(key)),
    )
    assert_refused(done, "192.0.2.1", "not an address of this machine", "--host")
    assert list(tmp_path.iterdir()) == [], "something was created on the way"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="capabilities and sysctl are Linux's")
def test_a_port_this_user_may_not_listen_on(tmp_path: Path) -> None:
    unprivileged_from = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    if unprivileged_from <= 80:
        pytest.skip("every user may listen on port 80 here (net.ipv4.ip_unprivileged_port_start)")
    data = tmp_path / "data"
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_BIND_SERVICE, *SERVE_80, "--data-dir", str(data)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": path},
        timeout=60,
    )
    assert_refused(done, "port 80", "1024", "--port 0")
    assert list(tmp_path.iterdir()) == [], "something was created on the way"


def test_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    data = tmp_path / "notes.txt"
    data.write_text("mine")
    assert_refused(serve_cli("--data-dir", str(data)), str(data), "not a folder", "--data-dir")
    assert data.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_data_dir_inside_a_file(tmp_path: Path) -> None:
    data = tmp_path / "notes.txt" / "data"
    (tmp_path / "notes.txt").write_text("mine")
    assert_refused(serve_cli("--data-dir", str(data)), str(tmp_path / "notes.txt"), "--data-dir")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (no folder can be made there)")
def test_a_data_dir_that_cannot_be_made(tmp_path: Path) -> None:
    data = Path("/proc/flyte-run-widget/data")
    token = tmp_path / "token"
    done = serve_cli("--data-dir", str(data), "--token-file", str(token))
    assert_refused(done, str(data), "--data-dir")
    assert list(tmp_path.iterdir()) == [], "something was created on the way"


def test_a_token_file_in_a_missing_folder(tmp_path: Path) -> None:
    token = tmp_path / "missing" / "token"
    done = serve_cli("--data-dir", str(tmp_path / "data"), "--token-file", str(token))
    assert_refused(done, str(token.parent), "--token-file")
    assert list(tmp_path.iterdir()) == [], "something was created on the way"


def test_a_data_dir_another_service_uses(tmp_path: Path, service) -> None:
    token = tmp_path / "token"
    done = serve_cli("--data-dir", str(service.data_dir), "--token-file", str(token))
    assert_refused(done, "another Run service already uses", "--data-dir")
    assert not token.exists()
    assert f'"pid": {service.proc.pid}' in (service.data_dir / "server.json").read_text()


def _first_line(tmp_path: Path, *args: str) -> str:
    """The service's start-up line (its output is read until the line comes)."""
    proc = _serve(tmp_path / "data", "--port", "0", *args)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("Flyte Run service listening on"):
                return line.rstrip("\n")
        raise AssertionError(f"the service ended without a start-up line (exit code {proc.wait()})")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


@pytest.mark.parametrize(
    ("token", "tls", "says"),
    [
        (False, False, "plain text, no token"),
        (True, False, "plain text, token required"),
        (False, True, "TLS, no token"),
        (True, True, "TLS, token required"),
    ],
)
def test_the_start_up_line_says_what_is_true(
    tmp_path: Path, tls_files: tuple[Path, Path], token: bool, tls: bool, says: str
) -> None:
    args: list[str] = []
    if token:
        args += ["--token-file", str(tmp_path / "token")]
    if tls:
        args += ["--tls-cert", str(tls_files[0]), "--tls-key", str(tls_files[1])]
    line = _first_line(tmp_path, *args)
    assert line.endswith(f"(data: {tmp_path / 'data'}, {says})"), line
