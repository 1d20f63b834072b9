"""Load: many concurrent runs, each logging 1,000 lines per second, against the local service.

    python bench/load.py             # 100 runs x 60 s (6,000,000 lines)
    python bench/load.py --quick     # 20 runs x 10 s

Checks that every line reaches the log once, in order and intact (on disk for every run, through
TailLogs for the runs that live followers watched), samples the service's RSS and CPU, and the
relays', once a second, and checks that the service's memory stays bounded (no growth in the
second half of the run beyond 10 MB). Prints a JSON report; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import psutil
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.core import identifier_pb2, tasks_pb2
from flyteidl2.logs.dataplane import payload_pb2
from flyteidl2.task import run_pb2, task_definition_pb2
from flyteidl2.workflow import run_logs_service_pb2 as rl
from flyteidl2.workflow import run_logs_service_pb2_grpc, run_service_pb2_grpc
from flyteidl2.workflow import run_service_pb2 as rs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import contextlib

from _record import Record, figure

from flyte_run_widget.server.log_files import LogReader
from flyte_run_widget.server.paths import Layout

# `rate` lines a second for `seconds`, in 10 bursts a second, paced by the clock.
LOGGER = (
    "import sys, time\n"
    "rate, seconds = int(sys.argv[1]), float(sys.argv[2])\n"
    "per, out, i, t0 = rate // 10, sys.stdout, 0, time.monotonic()\n"
    "total = int(rate * seconds)\n"
    "while i < total:\n"
    "    out.write(''.join(f'line {j} of the load benchmark, some text to make it real\\n'"
    " for j in range(i, min(total, i + per))))\n"
    "    out.flush()\n"
    "    i += per\n"
    "    time.sleep(max(0.0, t0 + i / rate - time.monotonic()))\n"
)


def task(rate: int, seconds: float) -> task_definition_pb2.TaskSpec:
    template = tasks_pb2.TaskTemplate(
        id=identifier_pb2.Identifier(resource_type=identifier_pb2.TASK, name="load.logger", version="1"),
        type="container",
        metadata=tasks_pb2.TaskMetadata(),
        container=tasks_pb2.Container(
            image="local", command=[sys.executable, "-c", LOGGER, str(rate), str(seconds)]
        ),
    )
    return task_definition_pb2.TaskSpec(task_template=template, short_name="logger")


def line(j: int) -> str:
    return f"line {j} of the load benchmark, some text to make it real"


def follow(stub: run_logs_service_pb2_grpc.RunLogsServiceStub, action_id: object, out: list[int]) -> None:
    """Count the USER lines TailLogs delivers; -1 if one is out of place (lost, repeated, garbled)."""
    count = 0
    for resp in stub.TailLogs(rl.TailLogsRequest(action_id=action_id), timeout=600):
        for group in resp.logs:
            for ln in group.lines:
                if ln.originator == payload_pb2.USER:
                    if ln.message.rstrip("\n") != line(count):
                        out.append(-1)
                        return
                    count += 1
    out.append(count)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="20 runs x 10 s")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--rate", type=int, default=1000, help="lines per second per run")
    parser.add_argument("--followers", type=int, default=5, help="runs followed live with TailLogs")
    args = parser.parse_args()
    runs = args.runs or (20 if args.quick else 100)
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    rec = Record("load")
    data = Path(tempfile.mkdtemp(prefix="frw-load-")) / "data"
    data.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "flyte_run_widget.server", "--data-dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    while not (data / "server.json").exists():
        time.sleep(0.05)
    endpoint = json.loads((data / "server.json").read_text())["endpoint"]
    channel = grpc.insecure_channel(endpoint)
    stub = run_service_pb2_grpc.RunServiceStub(channel)
    logs = run_logs_service_pb2_grpc.RunLogsServiceStub(channel)
    service = psutil.Process(proc.pid)
    service.cpu_percent()
    t0 = time.monotonic()
    names = []
    for _ in range(runs):
        req = rs.CreateRunRequest(
            project_id=ids.ProjectIdentifier(name="load", domain="development"),
            task_spec=task(args.rate, seconds),
            run_spec=run_pb2.RunSpec(),
        )
        names.append(stub.CreateRun(req, timeout=30).run.action.id)
    followed: list[int] = []
    threads = [
        threading.Thread(target=follow, args=(logs, names[i], followed), daemon=True)
        for i in range(min(args.followers, runs))
    ]
    for t in threads:
        t.start()
    samples = []
    cpu_total_start = sum(service.cpu_times()[:2])
    while True:
        time.sleep(1.0)
        relays = [c for c in service.children() if c.is_running()]
        relay_rss = 0
        for c in relays:
            with contextlib.suppress(psutil.Error):
                relay_rss += c.memory_info().rss
        samples.append(
            {
                "t": round(time.monotonic() - t0, 1),
                "service_rss_mb": round(service.memory_info().rss / 2**20, 1),
                "service_cpu_pct": service.cpu_percent(),
                "relays": len(relays),
                "relays_rss_mb": round(relay_rss / 2**20, 1),
                "system_cpu_pct": psutil.cpu_percent(),
            }
        )
        print(json.dumps(samples[-1]), flush=True)
        done = 0
        for action_id in names:
            phase = stub.GetActionDetails(rs.GetActionDetailsRequest(action_id=action_id), timeout=30)
            done += phase.details.status.phase >= 5
        if done == runs:
            break
    wall = time.monotonic() - t0
    cpu_seconds = sum(service.cpu_times()[:2]) - cpu_total_start
    for t in threads:
        t.join(120)
    layout = Layout(data)
    expected = int(args.rate * seconds)
    per_run = []
    for action_id in names:
        reader = LogReader(layout.log_file(action_id.run.name, "a0", 1))
        count = 0
        while batch := reader.read():
            for r in batch:
                if r[1] == payload_pb2.USER:
                    count = count + 1 if r[2].decode() == line(count) else -(10**9)  # out of place
        per_run.append(count)
    channel.close()
    proc.terminate()
    proc.wait()
    rss = [s["service_rss_mb"] for s in samples]
    # Bounded: the service's memory in the second half of the run is not above the first half's
    # peak by more than noise (it holds no per-line state; followers stream from the files).
    half = len(rss) // 2
    growth = round(max(rss[half:]) - max(rss[: max(1, half)]), 1)
    report = {
        "runs": runs,
        "seconds": seconds,
        "rate_per_run": args.rate,
        "lines_expected": expected * runs,
        "lines_on_disk": sum(per_run),
        "runs_missing_lines": sum(1 for c in per_run if c != expected),
        "followed_live": followed,
        "followed_expected": expected,
        "wall_seconds": round(wall, 1),
        "service_cpu_seconds": round(cpu_seconds, 1),
        "service_rss_mb_first_max_last": [rss[0], max(rss), rss[-1]],
        "service_rss_growth_second_half_mb": growth,
        "memory_bounded": growth <= 10,
        "bench_process_rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
        "relays_rss_mb_max": max(s["relays_rss_mb"] for s in samples),
        "samples": samples,
    }
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=2))
    ok = report["lines_on_disk"] == report["lines_expected"] and all(c == expected for c in followed)
    ok = ok and report["runs_missing_lines"] == 0 and bool(report["memory_bounded"])
    lost = report["lines_expected"] - report["lines_on_disk"]
    complete = sum(c == expected for c in followed)
    rec.write(
        [
            figure(
                f"{runs} runs × {args.rate:,} lines/s × {seconds:g} s: every line kept, memory bounded",
                None,
                display=f"{lost:,} of {report['lines_expected']:,} lines lost; {complete} of {len(followed)} "
                f"live followers complete; service RSS +{growth:g} MB in the second half",
                target=("is", "none lost, ≤ 10 MB growth", "value"),
                met=ok,
            )
        ]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
