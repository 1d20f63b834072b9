"""The embedded Run service with 10,000 runs stored: ListRuns page of 100 (issue #4: ≤ 20 ms) and
GetRunDetails (≤ 5 ms), p50/p99 over many calls with a bare grpc client.

    python bench/service_scale.py                # 10,000 runs, 1,000 ListRuns + 3,000 GetRunDetails
    python bench/service_scale.py --quick        # 1,000 runs, 200 + 600 calls
    python bench/service_scale.py --runs N --data-dir DIR   # keep/reuse a store (creates only the missing runs)

Set-up: the service in a subprocess (bench/_service.py); N runs of a container task `true`,
created with CreateRun by 32 concurrent grpc.aio callers (the service starts one process per run);
then the benchmark waits until every run is final and the service has no child left, so the
figures are of an idle service with N runs in its SQLite store.

Calls (sync `grpc.insecure_channel` stubs, one call at a time, loopback):
  ListRuns first page      limit 100, the default sort (newest first)
  ListRuns deep pages      limit 100, following page tokens through all N runs
  ListRuns filtered        limit 100, filter phase = SUCCEEDED (matches every run)
  GetRunDetails            a random stored run each call
  floor                    GetRunDetails of a run that does not exist (NOT_FOUND): the
                           round trip of the bare client + grpc + the service's dispatch
Service CPU per call = the service process's user+sys CPU over the loop / calls.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from _record import Record, figure
from _service import Service, machine, machine_line, save
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.common import list_pb2
from flyteidl2.workflow import run_service_pb2 as rs
from flyteidl2.workflow import run_service_pb2_grpc as rs_grpc

from tests.conftest import container_task

PROJECT, DOMAIN = "proj", "development"


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def create_runs(endpoint: str, n: int, concurrency: int) -> float:
    task = container_task(["true"], name="bench.true")
    request = rs.CreateRunRequest(
        task_spec=task, project_id=ids.ProjectIdentifier(name=PROJECT, domain=DOMAIN)
    )
    t0 = time.perf_counter()
    async with grpc.aio.insecure_channel(endpoint) as channel:
        stub = rs_grpc.RunServiceStub(channel)
        left = n

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await stub.CreateRun(request, timeout=60)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0


def count_runs(stub: rs_grpc.RunServiceStub) -> tuple[int, int]:
    """(stored runs, runs not yet final) by paging through ListRuns."""
    total = active = 0
    token = ""
    while True:
        resp = stub.ListRuns(
            rs.ListRunsRequest(
                request=list_pb2.ListRequest(limit=100, token=token),
                project_id=ids.ProjectIdentifier(name=PROJECT, domain=DOMAIN),
            ),
            timeout=60,
        )
        total += len(resp.runs)
        active += sum(1 for r in resp.runs if r.action.status.phase < 4)  # QUEUED..RUNNING
        token = resp.token
        if not token:
            return total, active


def timed(fn, calls: int, svc: Service) -> tuple[list[float], float]:  # type: ignore[no-untyped-def]
    for _ in range(min(20, calls)):  # warm
        fn(0)
    cpu0 = svc.cpu_seconds()
    out = []
    for i in range(calls):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1000)
    return out, (svc.cpu_seconds() - cpu0) / calls * 1000


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--calls", type=int)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--data-dir", type=Path)
    args = ap.parse_args()
    n = args.runs or (1_000 if args.quick else 10_000)
    calls = args.calls or (200 if args.quick else 1_000)
    rec = Record("service_scale")
    m = machine()
    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="frw-bench-scale-"))
        data_dir = tmp / "data"
    try:
        with Service(data_dir) as svc:
            channel = grpc.insecure_channel(svc.endpoint)
            stub = rs_grpc.RunServiceStub(channel)
            have, _ = count_runs(stub)
            create_s, created = 0.0, max(0, n - have)
            if created:
                cpu0 = svc.cpu_seconds()
                create_s = asyncio.run(create_runs(svc.endpoint, created, args.concurrency))
                print(f"created {created} runs in {create_s:.1f} s", file=sys.stderr)
            t0 = time.perf_counter()
            while True:
                total, active = count_runs(stub)
                children = psutil.Process(svc.pid).children(recursive=True)
                if active == 0 and not children:
                    break
                time.sleep(1)
            settle_s = time.perf_counter() - t0
            create_cpu = svc.cpu_seconds() - cpu0 if created else 0.0
            names = []
            token = ""
            while True:
                resp = stub.ListRuns(
                    rs.ListRunsRequest(
                        request=list_pb2.ListRequest(limit=100, token=token),
                        project_id=ids.ProjectIdentifier(name=PROJECT, domain=DOMAIN),
                    )
                )
                names += [r.action.id.run.name for r in resp.runs]
                token = resp.token
                if not token:
                    break
            assert len(names) == total == len(set(names)), (len(names), total)
            tokens = [""]
            while True:
                resp = stub.ListRuns(
                    rs.ListRunsRequest(
                        request=list_pb2.ListRequest(limit=100, token=tokens[-1]),
                        project_id=ids.ProjectIdentifier(name=PROJECT, domain=DOMAIN),
                    )
                )
                if not resp.token:
                    break
                tokens.append(resp.token)
            pid = ids.ProjectIdentifier(name=PROJECT, domain=DOMAIN)
            first = rs.ListRunsRequest(request=list_pb2.ListRequest(limit=100), project_id=pid)
            filt = rs.ListRunsRequest(
                request=list_pb2.ListRequest(
                    limit=100,
                    filters=[
                        list_pb2.Filter(
                            function=list_pb2.Filter.EQUAL, field="phase", values=["ACTION_PHASE_SUCCEEDED"]
                        )
                    ],
                ),
                project_id=pid,
            )
            rng = random.Random(1)
            run_ids = [ids.RunIdentifier(project=PROJECT, domain=DOMAIN, name=x) for x in names]
            missing = ids.RunIdentifier(project=PROJECT, domain=DOMAIN, name="rdoesnotexist")

            def list_first(_i: int) -> None:
                assert len(stub.ListRuns(first).runs) == 100

            def list_deep(i: int) -> None:
                tok = tokens[i % len(tokens)]
                req = rs.ListRunsRequest(request=list_pb2.ListRequest(limit=100, token=tok), project_id=pid)
                assert len(stub.ListRuns(req).runs) == 100

            filter_note = "ok"
            try:
                stub.ListRuns(filt)
            except grpc.RpcError as e:
                filter_note = f"rejected: {e.code().name} {e.details()}"

            def list_filtered(_i: int) -> None:
                assert len(stub.ListRuns(filt).runs) == 100

            def details(_i: int) -> None:
                rid = rng.choice(run_ids)
                d = stub.GetRunDetails(rs.GetRunDetailsRequest(run_id=rid)).details
                assert d.action.id.run.name == rid.name

            def floor(_i: int) -> None:
                try:
                    stub.GetRunDetails(rs.GetRunDetailsRequest(run_id=missing))
                except grpc.RpcError as e:
                    assert e.code() == grpc.StatusCode.NOT_FOUND

            cases = [
                ("ListRuns first page (100)", list_first, calls, 20.0),
                (f"ListRuns pages 1..{len(tokens)} via token (100)", list_deep, calls, 20.0),
            ]
            if filter_note == "ok":
                cases.append(("ListRuns filter phase=SUCCEEDED (100)", list_filtered, calls, 20.0))
            cases += [
                ("GetRunDetails (random run)", details, calls * 3, 5.0),
                ("floor: GetRunDetails NOT_FOUND", floor, calls * 3, None),
            ]
            results = []
            for label, fn, k, target in cases:
                ms, cpu_ms = timed(fn, k, svc)
                results.append((label, k, ms, cpu_ms, target))
                print(f"{label}: p50 {pct(ms, 50):.2f} ms p99 {pct(ms, 99):.2f} ms", file=sys.stderr)
            db = data_dir / "state.db"
            db_mb = db.stat().st_size / 1e6 if db.exists() else float("nan")
            rss = psutil.Process(svc.pid).memory_info().rss / 2**20
            peak = svc.peak_rss_mb()
            channel.close()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    lines = [
        f"## Service with {total:,} runs stored",
        "",
        f"Machine: {machine_line(m)}",
        "",
        (
            f"Set-up: {created:,} runs of `true` created in {create_s:.1f} s "
            f"({created / create_s:.0f} runs/s, {args.concurrency} concurrent CreateRun callers; service CPU "
            f"{create_cpu:.1f} s = {create_cpu / created * 1000:.1f} ms/run incl. process start and "
            f"finish), all final {settle_s:.1f} s later."
            if created
            else f"Set-up: reused a store with {total:,} runs."
        )
        + f" SQLite file {db_mb:.1f} MB; service RSS {rss:.0f} MB (peak {peak:.0f} MB).",
        "",
        "Sync grpc client, one call at a time over loopback. ms per call; service CPU = the service "
        "process's CPU per call.",
        "",
        "| call | calls | p50 ms | p90 ms | p99 ms | max ms | mean ms | service CPU ms/call | target | p99 vs target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    data: dict[str, object] = {
        "machine": m,
        "runs": total,
        "created": created,
        "create_s": create_s,
        "rows": [],
    }
    for label, k, ms, cpu_ms, target in results:
        verdict = "" if target is None else ("met" if pct(ms, 99) <= target else "not met")
        lines.append(
            f"| {label} | {k:,} | {pct(ms, 50):.2f} | {pct(ms, 90):.2f} | {pct(ms, 99):.2f} | {max(ms):.2f} | "
            f"{statistics.mean(ms):.2f} | {cpu_ms:.2f} | {'' if target is None else f'≤ {target:g} ms'} | {verdict} |"
        )
        data["rows"].append({"call": label, "ms": ms, "service_cpu_ms": cpu_ms})  # type: ignore[attr-defined]
    if filter_note != "ok":
        lines += ["", f"ListRuns with a phase filter: {filter_note}"]
    text = "\n".join(lines) + "\n"
    print(text)
    print(f"saved {save('service_scale', text, data)}", file=sys.stderr)
    floor = next(ms for label, _k, ms, _c, _t in results if label.startswith("floor"))
    shown = {
        "ListRuns first page": "first page",
        "ListRuns pages": "every page via token",
        "GetRunDetails": "",
    }
    figs = []
    for label, _k, ms, _cpu, target in results:
        what = next((v for k, v in shown.items() if label.startswith(k)), None)
        if what is None or target is None:
            continue
        call = label.split(" ", 1)[0]
        figs.append(
            figure(
                f"{total:,} runs stored: {call}{', ' + what if what else ''}, p99",
                pct(ms, 99),
                "ms",
                baseline="GetRunDetails of a missing run (gRPC floor)",
                baseline_value=pct(floor, 99),
                target=("<=", target, "value"),
            )
        )
    rec.write(figs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
