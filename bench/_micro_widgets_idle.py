"""Where the idle widgets' kernel CPU goes: N RunWidgets in-process (no kernel) on silent runs, the
process's CPU over a window, with the widget's flusher as it is and with FLUSH_INTERVAL raised
(so its 4 wake-ups/s per widget stop), and with no widget at all.

    python bench/_micro_widgets_idle.py [--widgets 50] [--seconds 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import grpc
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import tempfile

from _service import Service
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.workflow import run_service_pb2 as rs
from flyteidl2.workflow import run_service_pb2_grpc as rs_grpc

from tests.conftest import container_task

PID = ids.ProjectIdentifier(name="proj", domain="development")


def cpu_over(seconds: float) -> float:
    p = psutil.Process()
    c0 = p.cpu_times()
    time.sleep(seconds)
    c1 = p.cpu_times()
    return ((c1.user + c1.system) - (c0.user + c0.system)) / seconds * 100


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--widgets", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    import flyte_run_widget as frw
    from flyte_run_widget.notebook import widget as wmod

    with tempfile.TemporaryDirectory() as tmp, Service(Path(tmp) / "data") as svc:
        frw.init(svc.endpoint, project=PID.name, domain=PID.domain)
        stub = rs_grpc.RunServiceStub(grpc.insecure_channel(svc.endpoint))
        task = container_task(["sleep", "3600"], name="bench.silent")
        names = [
            stub.CreateRun(rs.CreateRunRequest(task_spec=task, project_id=PID)).run.action.id.run.name
            for _ in range(args.widgets * 2)
        ]
        frw.Run.get(names[0])  # starts the background loop and the channel
        time.sleep(1)
        print(f"client with no widget: {cpu_over(args.seconds):.2f} % of one core")
        ws = [wmod.RunWidget(frw.Run.get(n)) for n in names[: args.widgets]]
        time.sleep(3)
        print(f"{args.widgets} widgets, FLUSH_INTERVAL {wmod.FLUSH_INTERVAL}: {cpu_over(args.seconds):.2f} %")
        for w in ws:
            w.close()
        wmod.FLUSH_INTERVAL = 3600.0
        ws = [wmod.RunWidget(frw.Run.get(n)) for n in names[args.widgets :]]
        time.sleep(3)
        print(f"{args.widgets} widgets, flusher parked (3600 s): {cpu_over(args.seconds):.2f} %")
        for w in ws:
            w.close()
        for n in names:
            stub.AbortRun(
                rs.AbortRunRequest(run_id=ids.RunIdentifier(project=PID.name, domain=PID.domain, name=n))
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
