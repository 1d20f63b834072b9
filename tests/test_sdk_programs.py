"""Programs written with the public flyte SDK 2.12.1 (``tests/flyte_programs/``, in the style of
the SDK's own examples) run on the local Run service: ``flyte.init(endpoint=..., insecure=True)``,
``flyte.run(main, ...)``, and they end as the SDK's local mode ends them.

The SDK runs in its own environment (``FRW_SDK212_PYTHON``): ``tests/sdk_programs_client.py``
drives it; the service runs the tasks with that same interpreter (``--flyte-python``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FixedPortService, LocalService, skip_or_fail

from flyte_run_widget.common.pids import pid_alive

SDK_PYTHON = os.environ.get("FRW_SDK212_PYTHON", "")
SCRIPT = Path(__file__).with_name("sdk_programs_client.py")
KIND_USER = 1  # flyteidl2.workflow.ErrorInfo.KIND_USER


@pytest.fixture
def sdk_service(tmp_path: Path) -> Iterator[LocalService]:
    if not SDK_PYTHON:
        skip_or_fail(
            "FRW_SDK212_PYTHON is not set: point it at the python of an environment with"
            " flyte==2.12.1 (scripts/test creates .venv-sdk212 and sets it)"
        )
    svc = LocalService(tmp_path / "data", args=["--flyte-python", SDK_PYTHON])
    try:
        yield svc
    finally:
        svc.stop()


class FixedSdkService(FixedPortService):
    """Restarted on the same port: the SDK's upload cache is keyed by the endpoint."""

    def __init__(self, data_dir: Path, args: list[str]) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        LocalService.__init__(self, data_dir, args=args)


def drive(service: LocalService, home: Path, scenario: str, *args: str) -> dict[str, Any]:
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),  # no user config, no cache of earlier uploads
        "LANG": "C.UTF-8",
        "COLUMNS": "200",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "DO_NOT_TRACK": "1",
    }
    started = time.monotonic()
    proc = subprocess.run(
        [SDK_PYTHON, str(SCRIPT), service.endpoint, scenario, *args],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    detail = (
        f"exit {proc.returncode} after {time.monotonic() - started:.1f}s\nstdout:\n{proc.stdout}"
        f"\nstderr:\n{proc.stderr}\nservice:\n{service.log_path.read_text()}"
    )
    assert proc.returncode == 0, detail
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["flyte_version"] == "2.12.1", result
    return result


def test_hello_world_ends_as_in_local_mode(sdk_service: LocalService, tmp_path: Path) -> None:
    result = drive(sdk_service, tmp_path / "home", "hello")
    assert result["phase"] == "succeeded", result
    assert result["outputs"] == result["local_outputs"] == ["Hello, World!"]
    # show_logs through Run.get: the task's own line, between the runtime's start and end.
    logs = result["logs"]
    started, said = logs.index("Flyte runtime started"), logs.index("saying hello to World")
    assert started < said < logs.index("exited with code 0")
    # Opened by the service's line: the task as the program names it, the attempt, the pid.
    first = next(line.strip() for line in logs.splitlines() if line.strip())
    assert re.fullmatch(r"started hello_world\.main, attempt 1, pid \d+", first), logs
    # The code bundle and the inputs were stored under the service's data folder.
    blobs = sdk_service.data_dir / "blobs"
    assert any(p.name.endswith(".tar.gz") for p in blobs.rglob("*")), list(blobs.rglob("*"))


def test_a_bundle_the_sdk_remembers_is_still_there_after_a_restart(tmp_path: Path) -> None:
    if not SDK_PYTHON:
        skip_or_fail("FRW_SDK212_PYTHON is not set (scripts/test sets it)")
    service = FixedSdkService(tmp_path / "data", ["--flyte-python", SDK_PYTHON])
    try:
        first = drive(service, tmp_path / "home", "hello")
        bundles = list((service.data_dir / "blobs").rglob("*.tar.gz"))
        stamps = {p: p.stat().st_mtime_ns for p in bundles}
        service.restart()
        # Same endpoint and home: the SDK finds the upload in its cache and sends only its URI.
        second = drive(service, tmp_path / "home", "hello")
    finally:
        service.stop()
    assert (first["phase"], second["phase"]) == ("succeeded", "succeeded"), second
    assert second["outputs"] == ["Hello, World!"]
    assert len(bundles) == 1
    assert {p: p.stat().st_mtime_ns for p in bundles} == stamps  # not uploaded again


def test_a_failing_task_fails_the_run_with_its_error(sdk_service: LocalService, tmp_path: Path) -> None:
    result = drive(sdk_service, tmp_path / "home", "failing")
    local = result["local"]
    assert not local["ok"], local
    assert result["phase"] == "failed", result
    # Local mode raises RuntimeUserError(code="ValueError", message); the run records the same.
    assert local["error"]["type"] == "RuntimeUserError"
    assert (result["error"]["code"], result["error"]["message"]) == (
        local["error"]["code"],
        local["error"]["message"],
    )
    assert result["error"]["code"] == "ValueError"
    assert result["error"]["message"] == "x is 3, it must be at least 10"
    assert result["error"]["kind"] == KIND_USER
    assert "checking x" in result["logs"]


def test_a_fan_out_in_a_group_ends_as_in_local_mode(sdk_service: LocalService, tmp_path: Path) -> None:
    result = drive(sdk_service, tmp_path / "home", "fanout")
    assert result["phase"] == "succeeded", result
    assert result["outputs"] == result["local_outputs"] == [sum(i * i for i in range(10))]
    # The tree through the SDK: the root and its 10 children, each in the group, all done.
    actions = {a["name"]: a for a in result["tree"]}
    assert actions["a0"]["phase"] == "succeeded"
    children = [a for a in result["tree"] if a["name"] != "a0"]
    assert len(children) == 10, result["tree"]
    assert {(a["parent"], a["group"], a["phase"]) for a in children} == {("a0", "squares", "succeeded")}
    # Each sub-task's own log, through Action.show_logs.
    said = sorted(int(m) for log in result["child_logs"].values() for m in re.findall(r"squaring (\d+)", log))
    assert said == list(range(10)), result["child_logs"]
    firsts = [
        next(line.strip() for line in log.splitlines() if line.strip())
        for log in result["child_logs"].values()
    ]
    assert all(re.fullmatch(r"started fanout\.square, attempt 1, pid \d+", f) for f in firsts), firsts


def test_a_failing_sub_task_fails_its_parent_as_in_local_mode(
    sdk_service: LocalService, tmp_path: Path
) -> None:
    result = drive(sdk_service, tmp_path / "home", "parent_fails")
    local = result["local"]
    assert not local["ok"] and local["error"]["type"] == "RuntimeUserError", local
    assert result["phase"] == "failed", result
    assert (result["error"]["code"], result["error"]["message"]) == (
        local["error"]["code"],
        local["error"]["message"],
    )
    assert result["error"]["message"] == "5 is more than 2"
    (child,) = [a for a in result["tree"] if a["name"] != "a0"]
    assert (child["parent"], child["phase"]) == ("a0", "failed"), result["tree"]


def test_abort_through_the_sdk_stops_the_task(sdk_service: LocalService, tmp_path: Path) -> None:
    pid_file = tmp_path / "task.pid"
    result = drive(sdk_service, tmp_path / "home", "abort", str(pid_file))
    assert result["phase_before"] == "running", result
    assert result["phase"] == "aborted", result
    pid = int(pid_file.read_text())
    # Aborted means the process is gone, not only the phase (the runtime has no SIGTERM handler).
    assert not pid_alive(pid), f"the task process {pid} outlived the abort"


def test_abort_of_a_fan_out_stops_every_sub_task(sdk_service: LocalService, tmp_path: Path) -> None:
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    result = drive(sdk_service, tmp_path / "home", "abort_fanout", str(pid_dir), "2")
    assert result["phase"] == "aborted", result
    pids = {p.name: int(p.read_text()) for p in pid_dir.iterdir()}
    assert set(pids) == {"parent", "child-0", "child-1"}, pids
    # The task runtime stops none of its children itself: the service must have.
    assert not [name for name, pid in pids.items() if pid_alive(pid)], pids
    children = [a for a in result["tree"] if a["name"] != "a0"]
    assert len(children) == 2 and {a["phase"] for a in children} == {"aborted"}, result["tree"]


def test_unsupported_features_are_named(sdk_service: LocalService, tmp_path: Path) -> None:
    result = drive(sdk_service, tmp_path / "home", "unsupported")
    gpu, secret = result["gpu"], result["secret"]
    assert not gpu["ok"] and not secret["ok"], result
    assert "requests a GPU or accelerator" in gpu["error"]["message"], gpu
    assert "requests secrets (api-key)" in secret["error"]["message"], secret
    # A sub-task asking for a GPU fails its parent at once, with the same message.
    child = result["gpu_child"]
    assert child["phase"] == "failed", child
    assert "task 'gpu_child.train' requests a GPU or accelerator" in child["error"]["message"], child
    assert "UNKNOWN" not in json.dumps(result)
