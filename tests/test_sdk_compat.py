"""The public ``flyte`` SDK 2.0.x (gRPC) against the local Run service.

The SDK lives in its own environment (``flyte==2.0.*`` with ``grpcio<1.80``: flyte 2.0 fails
every RPC with newer grpcio), named by ``FRW_SDK_PYTHON``; ``scripts/test`` creates it and
always sets the variable. ``tests/sdk_client.py`` runs there and drives ``flyte.remote.Run``:
``Run.get``, ``wait``, ``show_logs(raw=True)``, ``inputs``, ``outputs``, ``details``,
``listall`` and ``abort``, printing what each returned as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import LocalService, ServiceClient, python_task, skip_or_fail
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.common import phase_pb2
from flyteidl2.core import interface_pb2, types_pb2
from flyteidl2.task import common_pb2, task_definition_pb2
from flyteidl2.workflow import run_service_pb2 as rs

SDK_PYTHON = os.environ.get("FRW_SDK_PYTHON", "")
SCRIPT = Path(__file__).with_name("sdk_client.py")


@pytest.fixture(autouse=True)
def _sdk_environment() -> None:
    if not SDK_PYTHON:
        skip_or_fail(
            "FRW_SDK_PYTHON is not set: point it at the python of an environment with"
            " flyte==2.0.* and grpcio<1.80 (scripts/test creates .venv-sdk and sets it)"
        )


P = phase_pb2
PROJECT, DOMAIN = "sdkproj", "development"

# Prints a few lines, waits (at most 60 s) until the file sys.argv[3] exists, then writes
# o0 = x + 1 (x from inputs.pb) to outputs.pb. The SDK script creates that file after Run.get,
# so its wait() really follows the run to the end instead of finding it finished already.
SUCCEEDS = """
import os, sys, time
from flyteidl2.task import common_pb2
inputs = common_pb2.Inputs.FromString(open(sys.argv[1], "rb").read())
x = inputs.literals[0].value.scalar.primitive.integer
for i in range(3):
    print(f"sdk line {i}", flush=True)
deadline = time.monotonic() + 60
while not os.path.exists(sys.argv[3]) and time.monotonic() < deadline:
    time.sleep(0.05)
out = common_pb2.Outputs()
out.literals.add(name="o0").value.scalar.primitive.integer = x + 1
open(sys.argv[2] + "/outputs.pb", "wb").write(out.SerializeToString())
print("sdk done", flush=True)
"""

FAILS = "import sys; print('about to fail', flush=True); sys.exit('sdk task failed on purpose')"

RUNS_LONG = "import time; print('long task started', flush=True); time.sleep(300)"


def int_interface() -> interface_pb2.TypedInterface:
    """x: int -> o0: int, the interface the SDK needs to turn the literals into Python values."""
    integer = types_pb2.LiteralType(simple=types_pb2.INTEGER)

    def variables(name: str) -> interface_pb2.VariableMap:
        return interface_pb2.VariableMap(
            variables=[interface_pb2.VariableEntry(key=name, value=interface_pb2.Variable(type=integer))]
        )

    return interface_pb2.TypedInterface(inputs=variables("x"), outputs=variables("o0"))


def with_interface(task: task_definition_pb2.TaskSpec) -> task_definition_pb2.TaskSpec:
    task.task_template.interface.CopyFrom(int_interface())
    return task


def int_inputs(x: int) -> common_pb2.Inputs:
    inputs = common_pb2.Inputs()
    inputs.literals.add(name="x").value.scalar.primitive.integer = x
    return inputs


def wait_until_running(client: ServiceClient, action_id: ids.ActionIdentifier, timeout: float = 30) -> None:
    request = rs.WatchActionDetailsRequest(action_id=action_id)
    for response in client.runs.WatchActionDetails(request, timeout=timeout):
        phase = response.details.status.phase
        if phase == P.ACTION_PHASE_RUNNING:
            return
        assert phase not in (P.ACTION_PHASE_SUCCEEDED, P.ACTION_PHASE_FAILED, P.ACTION_PHASE_ABORTED)
    raise AssertionError(f"run {action_id.run.name} never reached RUNNING")


def run_sdk(endpoint: str, home: Path, *names: str, timeout: float = 240) -> dict[str, Any]:
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),  # no user config, keyring or cached credentials
        "LANG": "C.UTF-8",
        "COLUMNS": "200",  # show_logs prints through rich; keep lines unwrapped
        "TERM": "dumb",
        "NO_COLOR": "1",
    }
    started = time.monotonic()
    proc = subprocess.run(
        [SDK_PYTHON, str(SCRIPT), endpoint, PROJECT, DOMAIN, *names],
        cwd=home,  # no ./config.yaml either
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    took = time.monotonic() - started
    detail = f"exit {proc.returncode} after {took:.1f}s\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, detail
    lines = proc.stdout.strip().splitlines()
    assert lines, detail
    result: dict[str, Any] = json.loads(lines[-1])
    result["_detail"] = detail
    return result


def check(result: dict[str, Any], step: str) -> dict[str, Any]:
    """The step's record, which must have succeeded (else the SDK's traceback is shown)."""
    assert step in result, f"the SDK script never ran {step}:\n{result['_detail']}"
    record: dict[str, Any] = result[step]
    assert record["ok"], f"{step} failed in the flyte SDK: {record['error']}\n{record['traceback']}"
    return record


def test_flyte_sdk_2_0_drives_the_local_service(
    service: LocalService, client: ServiceClient, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    ok_task = with_interface(python_task(SUCCEEDS, "{{.Inputs}}", "{{.Outputs}}", str(gate)))
    ok = client.create(ok_task, project=PROJECT, inputs=int_inputs(41))
    bad = client.create(python_task(FAILS), project=PROJECT)
    long = client.create(python_task(RUNS_LONG), project=PROJECT)
    # Another project's run must not show up in the SDK's listing.
    other = client.create(python_task("print('elsewhere')"), project="otherproj")
    wait_until_running(client, ok.action.id)
    wait_until_running(client, long.action.id)

    names = [r.action.id.run.name for r in (ok, bad, long)]
    result = run_sdk(service.endpoint, tmp_path / "sdk-home", str(gate), *names)

    assert result["flyte_version"].startswith("2.0."), result["flyte_version"]
    assert tuple(int(p) for p in result["grpc_version"].split(".")[:2]) < (1, 80)

    # Run.get, then wait to the terminal phase.
    got = check(result, "get_succeeded")
    assert got["name"] == names[0]
    assert (got["phase"], got["raw"]) == ("running", P.ACTION_PHASE_RUNNING)
    # wait() (not quiet: the SDK's own progress and final line) follows WatchActionDetails.
    waited = check(result, "wait_succeeded")
    assert (waited["phase"], waited["done"]) == ("succeeded", True)
    assert "completed successfully" in waited["printed"], waited["printed"]

    # show_logs(raw=True): every line the task printed, in order, among the service's own
    # (SYSTEM) lines; with filter_system=True only the task's.
    user_lines = ["sdk line 0", "sdk line 1", "sdk line 2", "sdk done"]
    text = check(result, "logs_succeeded")["text"]
    printed = [line.strip() for line in text.splitlines()]
    assert [line for line in printed if line in user_lines] == user_lines, text
    assert "exited with code 0" in printed, text
    text = check(result, "user_logs_succeeded")["text"]
    assert [line.strip() for line in text.splitlines() if line.strip()] == user_lines, text

    # inputs() and outputs(), converted by the SDK with the task's interface.
    assert check(result, "inputs_succeeded")["values"] == {"x": "41"}
    outputs = check(result, "outputs_succeeded")
    assert outputs["values"] == ["42"]
    assert outputs["named"] == {"o0": "42"}

    # The failing run: FAILED, with the task's error.
    waited = check(result, "wait_failed")
    assert (waited["phase"], waited["done"]) == ("failed", True)
    assert "sdk task failed on purpose" in (check(result, "details_failed")["error"] or "")

    # listall: the limit is honoured, the scope is the configured project and domain.
    assert check(result, "listall")["names"] == names[:2]
    assert check(result, "listall_all")["names"] == sorted(names)
    assert check(result, "listall_succeeded")["names"] == [names[0]]

    # abort() of the running task: the service ends it as ABORTED.
    assert check(result, "get_running")["phase"] == "running"
    check(result, "abort_running")
    waited = check(result, "wait_running")
    assert (waited["phase"], waited["done"]) == ("aborted", True)
    details = client.runs.GetRunDetails(
        rs.GetRunDetailsRequest(run_id=long.action.id.run), timeout=10
    ).details
    assert details.action.status.phase == P.ACTION_PHASE_ABORTED
    assert details.action.abort_info.reason == "aborted by the flyte SDK test"

    # A run that does not exist is NOT_FOUND (and proves the status codes are recorded).
    assert not result["get_missing"]["ok"]
    assert result["status_seen"].count("NOT_FOUND") >= 1, result["status_seen"]

    # Never UNKNOWN or UNAUTHENTICATED (flyte 2.0 would start an OAuth flow), nor INTERNAL.
    assert result["auth_refreshes"] == [], result["_detail"]
    bad_codes = {"UNKNOWN", "UNAUTHENTICATED", "INTERNAL"} & set(result["status_seen"])
    assert not bad_codes, f"the SDK saw {result['status_seen']}:\n{result['_detail']}"
    assert "failed in the local Run service" not in service.log_path.read_text()
    assert other.action.id.run.name not in check(result, "listall_all")["names"]
