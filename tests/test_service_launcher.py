"""ensure_service: finds a live local service for a data folder or starts exactly one."""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import psutil
import pytest
from flyteidl2.workflow import run_service_pb2 as rs
from flyteidl2.workflow import run_service_pb2_grpc

from flyte_run_widget.client.local_service import embedded_token, ensure_service, running_endpoint
from flyte_run_widget.common.version import __version__ as frw_version
from flyte_run_widget.errors import ServiceUnavailableError


def _stop(pid: int) -> None:
    try:
        proc = psutil.Process(pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)  # reaps it too: ensure_service started it as our child
    except psutil.NoSuchProcess:
        pass


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "svc"
    yield folder
    info = folder / "server.json"
    if info.exists():
        _stop(int(json.loads(info.read_text())["pid"]))


def test_starts_once_and_reuses(data_dir: Path) -> None:
    with ThreadPoolExecutor(4) as pool:
        endpoints = set(pool.map(lambda _: ensure_service(data_dir), range(4)))
    assert len(endpoints) == 1
    endpoint = endpoints.pop()
    assert endpoint.startswith("127.0.0.1:")
    info = json.loads((data_dir / "server.json").read_text())
    assert info == {
        "endpoint": endpoint,
        "pid": info["pid"],
        "version": 1,
        "started": info["started"],
        "package_version": frw_version,
    }
    assert isinstance(info["started"], float)
    assert ensure_service(data_dir) == endpoint
    assert running_endpoint(data_dir) == endpoint

    # Loopback is open to every local user: the embedded service wants its owner-only token.
    token = embedded_token(data_dir)
    assert token and len(token) >= 32
    assert stat.S_IMODE((data_dir / "service.token").stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    with grpc.insecure_channel(endpoint) as channel:
        stub = run_service_pb2_grpc.RunServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetRunDetails(rs.GetRunDetailsRequest(), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            stub.GetRunDetails(
                rs.GetRunDetailsRequest(), timeout=5, metadata=[("authorization", f"Bearer {token}")]
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_replaces_a_dead_service(data_dir: Path) -> None:
    first = ensure_service(data_dir)
    pid = json.loads((data_dir / "server.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)  # leaves a stale server.json behind
    psutil.Process(pid).wait(30)  # gone, not just signalled
    second = ensure_service(data_dir)
    assert json.loads((data_dir / "server.json").read_text())["pid"] != pid
    assert running_endpoint(data_dir) == second
    del first


def test_failure_to_start_names_the_log(data_dir: Path) -> None:
    (data_dir / "state.db").mkdir(parents=True)  # SQLite cannot open a folder
    with pytest.raises(ServiceUnavailableError) as err:
        ensure_service(data_dir, timeout=20)
    assert "server.log" in str(err.value)
