"""``flyte-run-widget status``, ``stop`` and ``--version`` against a real service: what they print
and the exit codes scripts rely on (0 running / stopped, 3 none running)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from cli_support import cli
from conftest import LocalService

from flyte_run_widget import __version__
from flyte_run_widget.common.pids import pid_alive


def test_version_is_the_package_version(tmp_path: Path) -> None:
    done = cli("--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"flyte-run-widget {__version__}"


def test_help_lists_the_exit_codes(tmp_path: Path) -> None:
    for command in ([], ["status"], ["stop"], ["runs"], ["logs"], ["abort"], ["open"]):
        done = cli(*command, "--help", cwd=tmp_path)
        assert done.returncode == 0
        for line in ("3  no Run service is running", "4  no such run", "5  abort: the run had already ended"):
            assert line in done.stdout, (command, done.stdout)


def test_status_of_a_running_service(service: LocalService, tmp_path: Path) -> None:
    before = time.time()
    done = cli("status", "--data-dir", str(service.data_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert service.proc is not None
    for shown in ("running", service.endpoint, str(service.proc.pid), str(service.data_dir), __version__):
        assert shown in done.stdout, done.stdout
    assert "since" in done.stdout

    done = cli("status", "--data-dir", str(service.data_dir), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["running"] is True
    assert info["endpoint"] == service.endpoint
    assert info["pid"] == service.proc.pid
    assert info["version"] == __version__
    assert Path(info["data_dir"]) == service.data_dir.resolve()
    # Written by the service when it started, which was before this test's first line ran.
    assert info["started"] <= before


def test_status_without_a_service_exits_3_and_says_how_to_start_one(tmp_path: Path) -> None:
    data = tmp_path / "nothing-here"
    done = cli("status", "--data-dir", str(data), cwd=tmp_path)
    assert done.returncode == 3
    assert "not running" in done.stdout
    assert f"flyte-run-widget serve --data-dir {data}" in done.stdout
    done = cli("status", "--data-dir", str(data), "--json", cwd=tmp_path)
    assert done.returncode == 3
    assert json.loads(done.stdout)["running"] is False


def test_a_stale_server_file_is_not_a_running_service(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (data / "server.json").write_text(json.dumps({"endpoint": "127.0.0.1:9", "pid": gone.pid, "version": 1}))
    assert cli("status", "--data-dir", str(data), cwd=tmp_path).returncode == 3
    done = cli("stop", "--data-dir", str(data), cwd=tmp_path)
    assert done.returncode == 3
    assert "no Run service is running" in done.stderr


def test_stop_ends_the_service_cleanly(service: LocalService, tmp_path: Path) -> None:
    assert service.proc is not None
    pid = service.proc.pid
    done = cli("stop", "--data-dir", str(service.data_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"pid {pid}" in done.stdout and "stopped" in done.stdout
    # Ended by SIGTERM through its own shutdown path: exit code 0, server.json removed.
    assert service.proc.wait(30) == 0
    assert not (service.data_dir / "server.json").exists()

    done = cli("stop", "--data-dir", str(service.data_dir), cwd=tmp_path)
    assert done.returncode == 3
    assert "no Run service is running" in done.stderr and "flyte-run-widget serve" in done.stderr
    assert cli("status", "--data-dir", str(service.data_dir), cwd=tmp_path).returncode == 3


def test_stop_never_signals_a_program_that_took_over_the_pid(service: LocalService, tmp_path: Path) -> None:
    """A server.json whose pid now names another program (pid reuse) while the port still
    answers: the other program must not be stopped."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        data = tmp_path / "reused"
        data.mkdir()
        info = {"endpoint": service.endpoint, "pid": other.pid, "version": 1}
        (data / "server.json").write_text(json.dumps(info))
        done = cli("stop", "--data-dir", str(data), cwd=tmp_path)
        assert done.returncode == 3, done.stdout + done.stderr
        assert other.poll() is None and pid_alive(other.pid)
        assert cli("status", "--data-dir", str(data), cwd=tmp_path).returncode == 3
    finally:
        other.kill()
        other.wait()


def test_the_service_started_by_init_is_found_by_status_and_stopped(tmp_path: Path) -> None:
    """The background service a notebook's init() starts (detached, with a token): status finds it
    in the default data folder, stop ends it."""
    data = tmp_path / "home" / ".local" / "share" / "flyte-run-widget"
    env = {"XDG_DATA_HOME": str(tmp_path / "home" / ".local" / "share")}
    home = tmp_path / "home"
    home.mkdir()
    try:
        # Starts the background service as init() does, and runs one task on it.
        start = cli("demo", "--terminal", "--epochs", "1", cwd=home, env=env, timeout=120)
        assert start.returncode == 0, start.stdout + start.stderr
        done = cli("status", "--json", cwd=home, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        info = json.loads(done.stdout)
        assert Path(info["data_dir"]) == data.resolve()
        done = cli("runs", "--json", cwd=home, env=env)
        assert done.returncode == 0, done.stderr
        (row,) = [json.loads(line) for line in done.stdout.splitlines()]
        assert row["phase"] == "succeeded" and row["task"] == "train"
        done = cli("stop", cwd=home, env=env)
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 30
        while pid_alive(info["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_alive(info["pid"])
        assert os.path.exists(data / "state.db")
    finally:
        cli("stop", cwd=home, env=env)
