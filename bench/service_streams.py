"""200 concurrent WatchActionDetails streams and 50 concurrent log tails on the embedded service:
every update delivered (count per stream vs expected), service CPU and RSS (issue #4).

    python bench/service_streams.py              # 200 watches on 20 retrying runs + 50 tails on 10 printing runs
    python bench/service_streams.py --quick      # same shape, shorter tasks
    python bench/service_streams.py --watches 200 --tails 50 --lines 3000

Set-up: the service in a subprocess (bench/_service.py); one grpc.aio client process (this one)
opens every stream: the watches on one connection, the tails on another, as the package's client
does (`--shared`: all on one connection).

  watch runs   20 runs of `sh -c 'sleep S; exit 1'` with 4 retries: 5 attempts, each
               QUEUED → INITIALIZING → RUNNING, then the final FAILED: 16 stored states per run.
               Each run gets watches/20 WatchActionDetails streams, opened right after CreateRun.
  tail runs    10 runs of a Python task printing L numbered lines (flushing each, ~1 ms apart);
               each gets tails/10 TailLogs streams (attempt 1), opened right after CreateRun.

Expected, per watch stream: the run's stored states are read back afterwards from the final
ActionDetails (attempts[].phase_transitions; a non-final attempt's FAILED is never saved, the
action goes straight to the next attempt's QUEUED). WatchActionDetails sends the *latest* state
on each change (the service coalesces states that replace each other before a stream is woken),
so the check is: the stream's states are in stored order with no repeat, start at the state
current when it opened, end with the final state, and its last message records every stored
transition (attempt, phase, start time) — nothing is lost (the verdict). Reported beside it: how
many states that lasted ≥ 50 ms ("required") and ≥ 250 ms were never the current state of a
message. Those are coalesced while the stream's previous write is still in flight: gRPC
completes a stream's write only after the transport has flushed it, and with 50 log tails on the
same connection that was seen to take up to ~550 ms (the client already had the message), so a
short RUNNING state of a retried attempt can pass unseen as a state, though never as a
transition.
Expected, per tail: exactly L user lines, numbered 0..L-1 in order, plus the service's system lines.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from _record import Record, figure
from _service import Service, machine, machine_line, save
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_logs_service_pb2 as rl
from flyteidl2.workflow import run_logs_service_pb2_grpc as rl_grpc
from flyteidl2.workflow import run_service_pb2 as rs
from flyteidl2.workflow import run_service_pb2_grpc as rs_grpc

from tests.conftest import container_task

PID = ids.ProjectIdentifier(name="proj", domain="development")
REQUIRED_MS = 50.0
SURE_MS = 250.0  # reported: states this long that were never a message's current state
PRINTER = (
    "import sys, time\n"
    "n = int(sys.argv[1])\n"
    "for i in range(n):\n"
    "    print(f'{i:08d} the quick brown fox jumps over the lazy dog', flush=True)\n"
    "    if i % 10 == 9: time.sleep(0.01)\n"
)


def stored_states(details: rd.ActionDetails) -> list[tuple[int, int, int]]:
    """(attempt, phase, start ns) of every state the service saved, in order."""
    out = []
    last = len(details.attempts) - 1
    for i, a in enumerate(details.attempts):
        for tr in a.phase_transitions:
            if i < last and tr.phase >= 5:  # a retried attempt's final phase is never saved
                continue
            out.append((a.attempt, int(tr.phase), tr.start_time.ToNanoseconds()))
    return out


class Sampler(threading.Thread):
    """Service CPU % (of one core) and RSS every 0.25 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.samples: list[tuple[float, float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        self.proc.cpu_percent(None)
        while not self.stop.wait(0.25):
            self.samples.append(
                (time.time(), self.proc.cpu_percent(None), self.proc.memory_info().rss / 2**20)
            )


async def scenario(
    endpoint: str, watches: int, tails: int, lines: int, sleep_s: float, shared: bool = False
) -> dict:  # type: ignore[type-arg]
    watch_runs, tail_runs = 20, 10
    # Watches and tails on separate connections, as flyte_run_widget's client does: on one
    # shared connection a backlog of log bytes holds back the watches' small writes.
    own = [("grpc.use_local_subchannel_pool", 1)] if not shared else []
    async with (
        grpc.aio.insecure_channel(endpoint) as channel,
        grpc.aio.insecure_channel(endpoint, options=own) as lc,
    ):
        runs = rs_grpc.RunServiceStub(channel)
        logs = rl_grpc.RunLogsServiceStub(lc)
        watch_task = container_task(["sh", "-c", f"sleep {sleep_s}; exit 1"], name="bench.retry", retries=4)
        tail_task = container_task([sys.executable, "-c", PRINTER, str(lines)], name="bench.print")

        async def watch(
            aid: ids.ActionIdentifier,
        ) -> tuple[list[tuple[int, int, float]], list[tuple[int, int, int]]]:
            got, last = [], rd.ActionDetails()
            async for r in runs.WatchActionDetails(rs.WatchActionDetailsRequest(action_id=aid), timeout=600):
                st = r.details.status
                got.append((int(st.attempts), int(st.phase), time.time()))
                last = r.details
            return got, stored_states(last)  # the last message's record of every transition

        async def tail(aid: ids.ActionIdentifier) -> tuple[int, int, bool]:
            user = system = 0
            ordered = True
            async for r in logs.TailLogs(rl.TailLogsRequest(action_id=aid, attempt=1), timeout=600):
                for group in r.logs:
                    for line in group.lines:
                        if line.originator == 1:  # USER
                            if not line.message.startswith(f"{user:08d} "):
                                ordered = False
                            user += 1
                        else:
                            system += 1
            return user, system, ordered

        t0 = time.time()
        watch_jobs: list[tuple[ids.ActionIdentifier, asyncio.Task]] = []  # type: ignore[type-arg]
        tail_jobs: list[tuple[ids.ActionIdentifier, asyncio.Task]] = []  # type: ignore[type-arg]
        per_watch, per_tail = watches // watch_runs, tails // tail_runs
        for i in range(max(watch_runs, tail_runs)):
            if i < watch_runs:
                run = (await runs.CreateRun(rs.CreateRunRequest(task_spec=watch_task, project_id=PID))).run
                aid = run.action.id
                watch_jobs += [(aid, asyncio.create_task(watch(aid))) for _ in range(per_watch)]
            if i < tail_runs:
                run = (await runs.CreateRun(rs.CreateRunRequest(task_spec=tail_task, project_id=PID))).run
                aid = run.action.id
                # TailLogs needs attempt 1 to exist: it does from CreateRun on.
                tail_jobs += [(aid, asyncio.create_task(tail(aid))) for _ in range(per_tail)]
        watch_results = [(aid, await job) for aid, job in watch_jobs]
        tail_results = [(aid, await job) for aid, job in tail_jobs]
        t1 = time.time()
        finals = {}
        for aid, _ in watch_jobs + tail_jobs:
            if aid.run.name not in finals:
                finals[aid.run.name] = (
                    await runs.GetActionDetails(rs.GetActionDetailsRequest(action_id=aid))
                ).details
    return {"t0": t0, "t1": t1, "watch": watch_results, "tail": tail_results, "finals": finals}


def check_watch(
    got: list[tuple[int, int, float]], seen: list[tuple[int, int, int]], states: list[tuple[int, int, int]]
) -> dict:  # type: ignore[type-arg]
    """``got``: (attempt, phase, receipt time) per message; ``seen``: the transitions the stream's
    last message records; ``states``: what the service stored."""
    index = {(a, p): i for i, (a, p, _) in enumerate(states)}
    seq = [index.get((a, p), -1) for a, p, _ in got]
    ok_order = all(x >= 0 for x in seq) and all(b > a for a, b in itertools.pairwise(seq))
    first = seq[0] if seq else len(states)
    expected = states[first:]
    durations = [(states[i + 1][2] - states[i][2]) / 1e6 for i in range(len(states) - 1)] + [float("inf")]
    required = {i for i in range(first, len(states)) if durations[i] >= REQUIRED_MS}
    delivered = set(seq)
    # Latency per delivered state: receipt time vs the state's start in the service.
    # The first message is the state current when the stream opened, not a change: left out.
    lat = [(t - states[i][2] / 1e9) * 1000 for (_, _, t), i in list(zip(got, seq, strict=True))[1:] if i >= 0]
    return {
        "got": len(got),
        "expected": len(expected),
        "required": len(required),
        "required_missing": len(required - delivered),
        "long_missing": len({i for i in required if durations[i] >= SURE_MS} - delivered),
        "transitions_complete": seen == states,
        "ordered": ok_order,
        "final": bool(seq) and seq[-1] == len(states) - 1,
        "lat_ms": lat,
    }


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--watches", type=int, default=200)
    ap.add_argument("--tails", type=int, default=50)
    ap.add_argument("--lines", type=int)
    ap.add_argument("--sleep", type=float)
    ap.add_argument("--shared", action="store_true", help="watches and tails on one connection")
    args = ap.parse_args()
    lines = args.lines or (1_000 if args.quick else 3_000)
    sleep_s = args.sleep or (0.2 if args.quick else 0.5)
    rec = Record("service_streams")
    m = machine()
    tmp = Path(tempfile.mkdtemp(prefix="frw-bench-streams-"))
    try:
        with Service(tmp / "data") as svc:
            time.sleep(0.5)
            idle_rss = psutil.Process(svc.pid).memory_info().rss / 2**20
            sampler = Sampler(svc.pid)
            sampler.start()
            cpu0 = svc.cpu_seconds()
            res = asyncio.run(scenario(svc.endpoint, args.watches, args.tails, lines, sleep_s, args.shared))
            cpu = svc.cpu_seconds() - cpu0
            sampler.stop.set()
            sampler.join()
            peak = svc.peak_rss_mb()
            end_rss = psutil.Process(svc.pid).memory_info().rss / 2**20
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    wall = res["t1"] - res["t0"]
    if os.environ.get("FRW_BENCH_DEBUG"):
        import json as _json

        dump = [
            {"run": aid.run.name, "got": got, "states": stored_states(res["finals"][aid.run.name])}
            for aid, (got, _) in res["watch"]
        ]
        Path(os.environ["FRW_BENCH_DEBUG"]).write_text(_json.dumps(dump))
    checks = []
    for aid, (got, seen) in res["watch"]:
        checks.append(check_watch(got, seen, stored_states(res["finals"][aid.run.name])))
    tails_ok = [
        (u == lines and ordered, u, s)
        for _aid, (u, s, ordered) in res["tail"]  # type: ignore[misc]
    ]
    got_total = sum(c["got"] for c in checks)
    exp_total = sum(c["expected"] for c in checks)
    req_total = sum(c["required"] for c in checks)
    req_missing = sum(c["required_missing"] for c in checks)
    lat = [x for c in checks for x in c["lat_ms"]]
    long_missing = sum(c["long_missing"] for c in checks)
    complete = sum(c["transitions_complete"] for c in checks)
    all_ok = all(c["ordered"] and c["final"] and c["transitions_complete"] for c in checks) and all(
        t[0] for t in tails_ok
    )
    cpu_pcts = [s[1] for s in sampler.samples]
    n_states = len(stored_states(next(iter(res["finals"].values()))))
    text = "\n".join(
        [
            f"## {len(checks)} WatchActionDetails streams + {len(tails_ok)} TailLogs streams",
            "",
            f"Machine: {machine_line(m)}",
            "",
            f"Connections: {'one for all streams (--shared)' if args.shared else 'watches on one, tails on another'}. "
            f"Watch runs: 20 × `sh -c 'sleep {sleep_s}; exit 1'`, 4 retries ({n_states} stored states per run), "
            f"{args.watches // 20} streams each. Tail runs: 10 × a Python task printing {lines:,} lines "
            f"(~1 ms apart), {args.tails // 10} tails each. Wall time, first CreateRun → last stream end: "
            f"{wall:.1f} s.",
            "",
            "| figure | value |",
            "|---|---|",
            f"| watch streams: states received / stored since open (sum) | {got_total:,} / {exp_total:,} "
            f"({got_total / max(1, exp_total):.1%}; per stream min {min(c['got'] for c in checks)}, "
            f"max {max(c['got'] for c in checks)}) |",
            f"| watch streams: required states (lasted ≥ {REQUIRED_MS:g} ms) missing | {req_missing} of {req_total:,} |",
            f"| watch streams: every stored transition (phase, attempt, start time) in the stream's last message "
            f"(the verdict) | {complete} of {len(checks)} |",
            f"| watch streams: states that lasted ≥ {SURE_MS:g} ms never the current state of a message | {long_missing} |",
            f"| watch streams: in order, no repeat, ending with the final state | "
            f"{sum(c['ordered'] and c['final'] for c in checks)} of {len(checks)} |",
            f"| watch delivery latency of changes (receipt − state start in the service) p50 / p99 / max ms | "
            f"{pct(lat, 50):.1f} / {pct(lat, 99):.1f} / {max(lat):.1f} |",
            f"| tails: exactly {lines:,} user lines in order | {sum(t[0] for t in tails_ok)} of {len(tails_ok)} "
            f"(system lines per tail: {statistics.median(t[2] for t in tails_ok):g}) |",
            f"| service CPU over the run | {cpu:.1f} s = {cpu / wall:.0%} of one core (0.25 s samples: "
            f"p50 {pct(cpu_pcts, 50):.0f} %, max {max(cpu_pcts, default=0):.0f} %) |",
            f"| service RSS idle → peak → end MB | {idle_rss:.0f} → {peak:.0f} → {end_rss:.0f} |",
            f"| verdict | {'every update delivered' if all_ok else 'SOMETHING MISSING (see JSON)'} |",
            "",
        ]
    )
    print(text)
    data = {
        "machine": m,
        "checks": checks,
        "tails": tails_ok,
        "cpu_s": cpu,
        "wall_s": wall,
        "samples": sampler.samples,
    }
    print(f"saved {save('service_streams', text, data)}", file=sys.stderr)
    what = f"{len(checks)} watch + {len(tails_ok)} TailLogs streams"
    rec.write(
        [
            figure(
                f"{what}: every transition and line delivered",
                None,
                display=f"{complete} of {len(checks)} watches, {sum(t[0] for t in tails_ok)} of {len(tails_ok)} tails",
                target=("is", "all", "value"),
                met=all_ok,
            ),
            figure(f"{what}: watch delivery latency, p99", pct(lat, 99), "ms"),
        ]
    )
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
