"""The public ``flyte`` SDK 2.12.1 (Connect protocol over HTTP/1.1) against the local Run service.

The SDK lives in its own environment (``flyte==2.12.1``), named by ``FRW_SDK212_PYTHON``;
``scripts/test`` creates it and sets the variable. ``tests/sdk212_client.py`` runs there and
drives ``flyte.remote.Run`` and ``Action``: ``Run.get``, ``wait``, ``show_logs`` and ``get_logs``
(through ClusterService/SelectCluster and DataProxyService/TailLogs), ``inputs``, ``outputs``,
``Action.listall``, ``Run.listall`` with filters, and ``abort``. The flyte 2.0 test
(test_sdk_compat.py) drives the same kind of service over gRPC.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import LocalService, ServiceClient, python_task
from flyteidl2.common import phase_pb2
from flyteidl2.workflow import run_service_pb2 as rs
from test_sdk_compat import FAILS, RUNS_LONG, check, int_inputs, wait_until_running, with_interface
from test_sdk_compat import run_sdk as run_script

SDK_PYTHON = os.environ.get("FRW_SDK212_PYTHON", "")
SCRIPT = Path(__file__).with_name("sdk212_client.py")

pytestmark = pytest.mark.skipif(
    not SDK_PYTHON,
    reason="FRW_SDK212_PYTHON is not set: point it at the python of an environment with"
    " flyte==2.12.1 (scripts/test creates .venv-sdk212 and sets it)",
)

P = phase_pb2
PROJECT, DOMAIN = "sdkproj", "development"
LINES = 3000

# Prints LINES numbered lines (some long, some not ASCII), waits (at most 60 s) until the file
# sys.argv[3] exists, then writes o0 = x + 1 (x from inputs.pb) to outputs.pb.
SUCCEEDS = f"""
import os, sys, time
from flyteidl2.task import common_pb2
inputs = common_pb2.Inputs.FromString(open(sys.argv[1], "rb").read())
x = inputs.literals[0].value.scalar.primitive.integer
for i in range({LINES}):
    print(f"line {{i}} " + ("é" * (i % 7)) + ("z" * (3000 if i % 500 == 0 else 0)), flush=i % 100 == 0)
deadline = time.monotonic() + 60
while not os.path.exists(sys.argv[3]) and time.monotonic() < deadline:
    time.sleep(0.05)
out = common_pb2.Outputs()
out.literals.add(name="o0").value.scalar.primitive.integer = x + 1
open(sys.argv[2] + "/outputs.pb", "wb").write(out.SerializeToString())
print("sdk done", flush=True)
"""


def expected_lines() -> list[str]:
    """What the task prints, without trailing blanks (the SDK's formatting strips them)."""
    printed = [f"line {i} " + "é" * (i % 7) + "z" * (3000 if i % 500 == 0 else 0) for i in range(LINES)]
    return [line.rstrip() for line in printed] + ["sdk done"]


def test_flyte_sdk_2_12_drives_the_local_service(
    service: LocalService, client: ServiceClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = tmp_path / "gate"
    ok_task = with_interface(python_task(SUCCEEDS, "{{.Inputs}}", "{{.Outputs}}", str(gate)))
    ok = client.create(ok_task, project=PROJECT, inputs=int_inputs(41))
    bad = client.create(python_task(FAILS), project=PROJECT)
    long = client.create(python_task(RUNS_LONG), project=PROJECT)
    other = client.create(python_task("print('elsewhere')"), project="otherproj")
    wait_until_running(client, ok.action.id)
    wait_until_running(client, long.action.id)

    names = [r.action.id.run.name for r in (ok, bad, long)]
    monkeypatch.setattr("test_sdk_compat.SDK_PYTHON", SDK_PYTHON)
    monkeypatch.setattr("test_sdk_compat.SCRIPT", SCRIPT)
    result: dict[str, Any] = run_script(service.endpoint, tmp_path / "sdk-home", str(gate), *names)

    assert result["flyte_version"] == "2.12.1", result["flyte_version"]

    got = check(result, "get_succeeded")
    assert (got["name"], got["phase"]) == (names[0], "running")
    waited = check(result, "wait_succeeded")
    assert (waited["phase"], waited["done"]) == ("succeeded", True)

    # Logs go through SelectCluster and the data proxy, never the RunLogsService.
    for name in ("show_logs", "get_logs"):
        calls = check(result, name)["calls"]
        assert "flyteidl2.cluster.ClusterService/SelectCluster" in calls or name == "get_logs", calls
        assert "flyteidl2.dataproxy.DataProxyService/TailLogs" in calls, calls
    assert not any("RunLogsService" in call for call in result["calls"]), result["calls"]
    # Every line, in order: get_logs without the service's own lines, show_logs with them.
    # (get_logs yields each message as the SDK formats it: a leading space, the trailing newline)
    assert [line.strip() for line in check(result, "get_logs")["lines"]] == expected_lines()
    # show_logs prints through rich, which wraps the long lines: compare their numbers.
    shown = check(result, "show_logs")["text"]
    assert [int(n) for n in re.findall(r"^\s*line (\d+)", shown, re.MULTILINE)] == list(range(LINES))
    assert shown.index(f"line {LINES - 1}") < shown.index("sdk done") < shown.index("exited with code 0")

    assert check(result, "inputs")["values"] == {"x": "41"}
    assert check(result, "outputs")["named"] == {"o0": "42"}
    listed = check(result, "action_listall")
    assert (listed["names"], listed["phases"]) == (["a0"], ["succeeded"])

    waited = check(result, "wait_failed")
    assert (waited["phase"], waited["done"]) == ("failed", True)

    # Run.listall: limit, project scope, phase filters (EQUAL and VALUE_IN), sort order.
    assert check(result, "listall_limit")["names"] == names[:2]
    assert check(result, "listall_all")["names"] == sorted(names)
    assert other.action.id.run.name not in check(result, "listall_all")["names"]
    assert check(result, "listall_succeeded")["names"] == [names[0]]
    assert check(result, "listall_two_phases")["names"] == sorted(names[:2])
    assert check(result, "listall_desc")["names"] == names[::-1]

    assert check(result, "get_running")["phase"] == "running"
    check(result, "abort_running")
    waited = check(result, "wait_running")
    assert (waited["phase"], waited["done"]) == ("aborted", True)
    details = client.runs.GetRunDetails(
        rs.GetRunDetailsRequest(run_id=long.action.id.run), timeout=10
    ).details
    assert details.action.status.phase == P.ACTION_PHASE_ABORTED
    assert details.action.abort_info.reason == "aborted by the flyte 2.12 test"

    assert not result["get_missing"]["ok"]
    assert "NOT_FOUND" in result["codes_seen"], result["codes_seen"]
    # Never UNKNOWN, UNAUTHENTICATED (an OAuth flow) or INTERNAL; no credential refresh at all.
    assert result["auth_refreshes"] == [], result["_detail"]
    bad_codes = {"UNKNOWN", "UNAUTHENTICATED", "INTERNAL"} & set(result["codes_seen"])
    assert not bad_codes, f"the SDK saw {result['codes_seen']}:\n{result['_detail']}"
    assert "failed in the local Run service" not in service.log_path.read_text()
