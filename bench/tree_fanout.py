"""A fan-out of N child actions (default 10,000) enqueued on the embedded service as the flyte
SDK's controller enqueues them (QueueService/EnqueueAction over gRPC, 64 in flight), each child
a short process (`python -c pass`), at most --limit running at once. Measures what the service's
bookkeeping costs while thousands wait QUEUED, not how fast processes start:

  enqueue           wall time and rate of the N EnqueueAction calls
  probe             GetRunDetails round trips while the N are enqueued (64 calls in flight) and
                    on the idle service before (p50/p99, ms)
  RSS               the service's resident memory before and after the N are queued
  ListActions page  one page of 100 children (ms)
  WatchActions      the snapshot of the whole tree to a client (s, batches)
  AbortRun          ending the run: the running children killed, the queued ones ABORTED (s)

    python bench/tree_fanout.py              # N = 10,000, --limit 4
    python bench/tree_fanout.py --children 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from _service import repo_env
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.core import tasks_pb2
from flyteidl2.task import task_definition_pb2
from flyteidl2.workflow import queue_service_pb2 as qs
from flyteidl2.workflow import (
    queue_service_pb2_grpc,
    run_service_pb2_grpc,
)
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_service_pb2 as rs


def spec(argv: list[str]) -> task_definition_pb2.TaskSpec:
    template = tasks_pb2.TaskTemplate(
        type="python-task", container=tasks_pb2.Container(image="local", args=argv)
    )
    template.id.name = "bench.child"
    return task_definition_pb2.TaskSpec(task_template=template)


async def main(n: int, limit: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="frw-tree-bench-"))
    argv = [sys.executable, "-m", "flyte_run_widget.server", "--port", "0", "--data-dir", str(data / "data")]
    argv += ["--max-child-actions", str(limit)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=repo_env())
    try:
        while not (data / "data" / "server.json").exists():
            assert proc.poll() is None, "the service did not start"
            time.sleep(0.05)
        endpoint = json.loads((data / "data" / "server.json").read_text())["endpoint"]
        service = psutil.Process(proc.pid)
        channel = grpc.aio.insecure_channel(endpoint)
        runs = run_service_pb2_grpc.RunServiceStub(channel)
        queue = queue_service_pb2_grpc.QueueServiceStub(channel)
        gate = data / "open"
        root = spec(
            [
                sys.executable,
                "-c",
                f"import os,time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.05)",
            ]
        )
        created = await runs.CreateRun(
            rs.CreateRunRequest(
                task_spec=root, project_id=ids.ProjectIdentifier(name="bench", domain="development")
            )
        )
        run = created.run.action.id.run
        child = rd.TaskAction(spec=spec([sys.executable, "-c", "pass"]))
        base = data / "base"
        rss_before = service.memory_info().rss / 2**20
        probes: list[float] = []
        stop = asyncio.Event()

        async def probe() -> None:
            while not stop.is_set():
                t = time.perf_counter()
                await runs.GetRunDetails(rs.GetRunDetailsRequest(run_id=run))
                probes.append((time.perf_counter() - t) * 1000)
                await asyncio.sleep(0.02)

        idle: list[float] = []
        for _ in range(50):  # the same call on the idle service, for comparison
            t = time.perf_counter()
            await runs.GetRunDetails(rs.GetRunDetailsRequest(run_id=run))
            idle.append((time.perf_counter() - t) * 1000)
        prober = asyncio.create_task(probe())
        sem = asyncio.Semaphore(64)

        async def enqueue(i: int) -> None:
            async with sem:
                name = f"c{i}"
                await queue.EnqueueAction(
                    qs.EnqueueActionRequest(
                        action_id=ids.ActionIdentifier(run=run, name=name),
                        parent_action_name="a0",
                        task=child,
                        input_uri=str(base / name / "inputs.pb"),
                        run_output_base=str(base),
                        group=f"g{i % 10}",
                    )
                )

        t0 = time.perf_counter()
        await asyncio.gather(*(enqueue(i) for i in range(n)))
        enqueue_s = time.perf_counter() - t0
        stop.set()
        await prober
        rss_after = service.memory_info().rss / 2**20
        t = time.perf_counter()
        await runs.ListActions(rs.ListActionsRequest(run_id=run))
        list_ms = (time.perf_counter() - t) * 1000
        t = time.perf_counter()
        batches = seen = 0
        async for response in runs.WatchActions(rs.WatchActionsRequest(run_id=run)):
            batches += 1
            seen += len(response.enriched_actions)
            if seen >= n + 1:
                break
        watch_s = time.perf_counter() - t
        t = time.perf_counter()
        await runs.AbortRun(rs.AbortRunRequest(run_id=run, reason="bench over"))
        abort_s = time.perf_counter() - t
        await channel.close()
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(data, ignore_errors=True)
    probes.sort()
    idle.sort()
    print(f"children {n:,}, --max-child-actions {limit}")
    print(f"enqueue           {enqueue_s:.1f} s ({n / enqueue_s:,.0f}/s)")
    print(
        f"probe             p50 {statistics.median(probes):.1f} ms, p99 {probes[int(len(probes) * 0.99)]:.1f} ms ({len(probes)} calls)"
    )
    print(f"probe, idle       p50 {statistics.median(idle):.1f} ms, max {idle[-1]:.1f} ms")
    print(f"RSS               {rss_before:.0f} MiB -> {rss_after:.0f} MiB")
    print(f"ListActions page  {list_ms:.1f} ms")
    print(f"WatchActions      {watch_s:.2f} s for {seen:,} actions in {batches} messages")
    print(f"AbortRun          {abort_s:.1f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=10_000)
    parser.add_argument("--limit", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.children, args.limit))
