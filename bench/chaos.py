"""Chaos: SIGKILL and restart the local Run service again and again under a workload of
concurrent runs that log, fail, time out and get aborted; then check every run.

    python bench/chaos.py            # 50 kill/restart cycles
    python bench/chaos.py --quick    # 5 cycles

Checked for every run: it ends (no run RUNNING forever), its phase transitions only move
forward, every transition and log line on disk before each kill is still there afterwards,
and its task's lines are contiguous ("line 0", "line 1", ...), none missing, none twice.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import grpc
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.core import identifier_pb2, tasks_pb2
from flyteidl2.logs.dataplane import payload_pb2
from flyteidl2.task import run_pb2, task_definition_pb2
from flyteidl2.workflow import run_logs_service_pb2 as rl
from flyteidl2.workflow import run_logs_service_pb2_grpc, run_service_pb2_grpc
from flyteidl2.workflow import run_service_pb2 as rs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _record import Record, figure

from flyte_run_widget.common.phase import TERMINAL_PHASES
from flyte_run_widget.server.log_files import LogReader
from flyte_run_widget.server.paths import Layout

COUNTER = (
    "import sys, time\n"
    "n, delay, code = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])\n"
    "for i in range(n):\n"
    "    print('line', i, flush=(i % 10 == 0))\n"
    "    time.sleep(delay)\n"
    "sys.stdout.flush()\n"
    "sys.exit(code)\n"
)
SUCCEEDED, FAILED, ABORTED, TIMED_OUT = 5, 6, 7, 8
SYSTEM_ERROR = 2  # ErrorInfo.KIND_SYSTEM


def task(n: int, delay: float, code: int = 0, timeout: float | None = None) -> task_definition_pb2.TaskSpec:
    meta = tasks_pb2.TaskMetadata()
    if timeout:
        meta.timeout.FromNanoseconds(int(timeout * 1e9))
    template = tasks_pb2.TaskTemplate(
        id=identifier_pb2.Identifier(resource_type=identifier_pb2.TASK, name="chaos.counter", version="1"),
        type="container",
        metadata=meta,
        container=tasks_pb2.Container(
            image="local", command=[sys.executable, "-c", COUNTER, str(n), str(delay), str(code)]
        ),
    )
    return task_definition_pb2.TaskSpec(task_template=template, short_name="counter")


class Service:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""
        self.start_seconds: list[float] = []

    def start(self) -> None:
        (self.data_dir / "server.json").unlink(missing_ok=True)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        t0 = time.monotonic()
        with open(self.data_dir.parent / "service.log", "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "flyte_run_widget.server",
                    "--data-dir",
                    str(self.data_dir),
                    "--abort-grace",
                    "1",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        while True:
            try:
                info = json.loads((self.data_dir / "server.json").read_text())
                if info["pid"] == self.proc.pid:
                    self.endpoint = info["endpoint"]
                    break
            except (OSError, ValueError, KeyError):
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("service exited while starting")
            time.sleep(0.02)
        self.start_seconds.append(time.monotonic() - t0)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()


class Stubs:
    def __init__(self, endpoint: str) -> None:
        self.channel = grpc.insecure_channel(endpoint)
        self.runs = run_service_pb2_grpc.RunServiceStub(self.channel)
        self.logs = run_logs_service_pb2_grpc.RunLogsServiceStub(self.channel)

    def details(self, name: str) -> object:
        rid = ids.RunIdentifier(project="chaos", domain="development", name=name)
        return self.runs.GetRunDetails(rs.GetRunDetailsRequest(run_id=rid), timeout=10).details.action


def transitions(details: object) -> list[list[tuple[int, int]]]:
    return [
        [(t.phase, t.start_time.ToNanoseconds()) for t in a.phase_transitions]
        for a in details.attempts  # type: ignore[attr-defined]
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="5 cycles instead of 50")
    parser.add_argument("--cycles", type=int)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    cycles = args.cycles or (5 if args.quick else 50)
    rec = Record("chaos")
    rnd = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="frw-chaos-"))
    data = root / "data"
    data.mkdir()
    layout = Layout(data)
    service = Service(data)
    service.start()
    intent: dict[str, str] = {}
    n_lines: dict[str, int] = {}
    snapshots: list[tuple[str, list[list[tuple[int, int]]], dict[int, list[bytes]]]] = []
    aborts = Counter[str]()
    t_start = time.monotonic()
    for cycle in range(cycles):
        stubs = Stubs(service.endpoint)
        for _ in range(rnd.randint(3, 6)):  # new runs this cycle
            kind = rnd.choice(["ok", "ok", "fail", "abort", "timeout", "long"])
            n, delay = rnd.randint(20, 400), rnd.choice([0.0, 0.002, 0.01])
            if kind == "long":
                n, delay = rnd.randint(200, 600), 0.01
            spec = {
                "ok": task(n, delay),
                "fail": task(n, delay, code=1),
                "abort": task(100_000, 0.01),
                "timeout": task(100_000, 0.01, timeout=rnd.uniform(0.5, 4)),
                "long": task(n, delay),
            }[kind]
            req = rs.CreateRunRequest(
                project_id=ids.ProjectIdentifier(name="chaos", domain="development"),
                task_spec=spec,
                run_spec=run_pb2.RunSpec(),
            )
            name = stubs.runs.CreateRun(req, timeout=10).run.action.id.run.name
            intent[name] = kind
            n_lines[name] = n if kind in ("ok", "fail", "long") else -1
        time.sleep(rnd.uniform(0.3, 1.5))
        for name, kind in intent.items():  # abort some of the aborters, at random moments
            if kind == "abort" and rnd.random() < 0.5:
                rid = ids.RunIdentifier(project="chaos", domain="development", name=name)
                try:
                    stubs.runs.AbortRun(rs.AbortRunRequest(run_id=rid, reason="chaos"), timeout=10)
                    aborts["accepted"] += 1
                except grpc.RpcError as exc:
                    aborts[exc.code().name] += 1
        time.sleep(rnd.uniform(0.0, 0.5))
        # What is on disk right now must survive the kill.
        for name in intent:
            d = stubs.details(name)
            logs = {}
            for a in d.attempts:  # type: ignore[attr-defined]
                reader = LogReader(layout.log_file(name, "a0", a.attempt))
                records: list[bytes] = []
                while batch := reader.read():
                    records += [r[2] for r in batch]
                logs[a.attempt] = records
            snapshots.append((name, transitions(d), logs))
        stubs.channel.close()
        service.kill()
        service.start()
        print(f"cycle {cycle + 1}/{cycles}: {len(intent)} runs", flush=True)
    # Let everything end: aborters are aborted now, the rest must end by themselves.
    stubs = Stubs(service.endpoint)
    for name, kind in intent.items():
        if kind == "abort":
            rid = ids.RunIdentifier(project="chaos", domain="development", name=name)
            try:
                stubs.runs.AbortRun(rs.AbortRunRequest(run_id=rid, reason="chaos"), timeout=30)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION, exc
    deadline = time.monotonic() + 120
    problems: list[str] = []
    finals: dict[str, object] = {}
    for name in intent:
        while True:
            d = stubs.details(name)
            if d.status.phase in TERMINAL_PHASES:  # type: ignore[attr-defined]
                finals[name] = d
                break
            if time.monotonic() > deadline:
                problems.append(f"{name}: never ended (phase {d.status.phase})")  # type: ignore[attr-defined]
                break
            time.sleep(0.1)
    wall = time.monotonic() - t_start
    outcomes = Counter[str]()
    lines_total = restarted = 0
    for name, d in finals.items():
        kind = intent[name]
        phase = d.status.phase  # type: ignore[attr-defined]
        code = d.error_info.code if d.HasField("error_info") else ""  # type: ignore[attr-defined]
        outcomes[f"{kind}->{phase}{'/' + code if code else ''}"] += 1
        for attempt in transitions(d):
            phases = [p for p, _ in attempt]
            times = [t for _, t in attempt]
            if phases != sorted(set(phases)) or times != sorted(times):
                problems.append(f"{name}: transitions not monotonic {attempt}")
            if any(p in TERMINAL_PHASES for p in phases[:-1]):
                problems.append(f"{name}: a terminal phase before the last {phases}")
        req = rl.TailLogsRequest(action_id=d.id)  # type: ignore[attr-defined]
        lines = [ln for resp in stubs.logs.TailLogs(req, timeout=60) for g in resp.logs for ln in g.lines]
        finals[name] = (d, lines)
        user = [ln.message.rstrip("\n") for ln in lines if ln.originator == payload_pb2.USER]
        lines_total += len(user)
        if user != [f"line {i}" for i in range(len(user))]:
            problems.append(f"{name}: task lines not contiguous ({len(user)} lines)")
        if phase == SUCCEEDED and len(user) != n_lines[name]:
            problems.append(f"{name}: succeeded with {len(user)} of {n_lines[name]} lines")
        # Each kind has one right ending; the only other is FAILED/ServiceRestarted, for a run
        # whose process a kill left behind before it was recorded (QUEUED or INITIALIZING).
        expected = {
            "ok": (SUCCEEDED, ""),
            "long": (SUCCEEDED, ""),
            "fail": (FAILED, "ExitCode1"),
            "abort": (ABORTED, ""),
            "timeout": (TIMED_OUT, ""),
        }[kind]
        if code == "ServiceRestarted":
            err = d.error_info  # type: ignore[attr-defined]
            restarted += 1
            if phase != FAILED or err.kind != SYSTEM_ERROR or "restarted" not in err.message:
                problems.append(f"{name}: a restart failure reported as {phase} {err.kind} {err.message!r}")
        elif (phase, code if phase == FAILED else "") != expected:
            problems.append(f"{name}: meant to end {expected}, ended {phase} {code}")
    for name, before, logs in snapshots:
        if name not in finals:
            continue
        d, lines = finals[name]  # type: ignore[misc]
        after = transitions(d)
        for old, new in zip(before, after, strict=False):
            if new[: len(old)] != old:
                problems.append(f"{name}: transitions lost across a kill: {old} -> {new}")
        if len(after) < len(before):
            problems.append(f"{name}: attempts lost across a kill")
        messages = [ln.message.rstrip("\n").encode() for ln in lines]
        last = max(logs) if logs else 0
        for attempt, records in logs.items():
            kept = [r.decode(errors="replace").encode() for r in records]
            if attempt == last and len(after) == attempt and messages[: len(records)] != kept:
                problems.append(f"{name}: log lines lost across a kill (attempt {attempt})")
    restart = sorted(service.start_seconds)
    log_text = (root / "service.log").read_text(errors="replace")
    report = {
        "cycles": cycles,
        "runs": len(intent),
        "wall_seconds": round(wall, 1),
        "restart_seconds_median": round(restart[len(restart) // 2], 2),
        "restart_seconds_max": round(restart[-1], 2),
        "adopted": log_text.count("adopted run"),
        "task_lines_checked": lines_total,
        "snapshots_checked": len(snapshots),
        "aborts": dict(aborts),
        "outcomes": dict(sorted(outcomes.items())),
        "failed_service_restarted": restarted,
        "problems": problems[:50],
        "problem_count": len(problems),
    }
    print(json.dumps(report, indent=2))
    rec.write(
        [
            figure(
                f"{cycles} SIGKILL + restart cycles, {len(intent)} runs: problems found",
                len(problems),
                display=f"{len(problems)} ({len(snapshots):,} snapshots, {lines_total:,} task lines checked)",
                target=("==", 0, "value"),
            )
        ]
    )
    stubs.channel.close()
    service.proc.terminate()  # type: ignore[union-attr]
    service.proc.wait()  # type: ignore[union-attr]
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
