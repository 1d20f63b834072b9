"""``flyte-run-widget serve`` refuses what it cannot do with one clear line, exit code 1 (2 for
arguments argparse rejects), and leaves nothing behind."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

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
