"""50 live RunWidgets on running, silent runs, for 60 s, in a real JupyterLab kernel with the page
open in Chromium: kernel CPU (issue #4: ≤ 2 % of one core) and kernel → browser messages/s in all
(≤ 20/s).

    python bench/widgets_idle.py             # 50 widgets, 60 s window (+ 20 s idle-kernel floor first)
    python bench/widgets_idle.py --quick     # 50 widgets, 15 s window (+ 10 s floor)
    python bench/widgets_idle.py --widgets N --seconds S [--pyspy]

Set-up: the service (bench/_service.py) runs N tasks `sleep 3600` (running, printing nothing);
JupyterLab, its kernelspec and Chromium come from tests/browser/conftest.py. Cell 1 points the
package at the service and counts every comm message the kernel publishes
(`comm.base_comm.BaseComm.publish_msg`, by kind: trait sync `update`, `custom` = log batches);
cell 2 displays `RunWidget(Run.get(name))` for each run. Once every badge shows "running" and
5 s have passed, the window starts:

  kernel CPU        psutil user+sys of the ipykernel process over the window, % of one core
  kernel messages   comm messages published by the kernel in the window (kernel-side count)
  browser frames    every websocket frame the page received in the window (Playwright), by
                    message type: this is "kernel → browser messages in all", including the
                    kernel's status/execute messages (two tiny executes read the counters, at
                    the window's start and end: their ~8 messages are inside the count)
  floor             the same figures for the same kernel before any widget exists (cell 1 only)
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from _lab import CHROMIUM_ARGS, JupyterServer, Lab, _chromium, chromium_version, code_cell, setup_cell
from _record import Record, figure
from _service import RAW, Service, machine, machine_line, save
from _widget_browser_page import KERNEL_EXEC
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.workflow import run_service_pb2 as rs
from flyteidl2.workflow import run_service_pb2_grpc as rs_grpc

from tests.conftest import container_task

PID = ids.ProjectIdentifier(name="proj", domain="development")

COUNT_CELL = """
import collections as _c
import comm.base_comm as _cb
_frw_counts = _c.Counter()
if not hasattr(_cb.BaseComm, "_frw_orig_publish"):
    _cb.BaseComm._frw_orig_publish = _cb.BaseComm.publish_msg
    def _frw_publish(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        kind = (data or {}).get("method", "") if msg_type == "comm_msg" else ""
        _frw_counts[msg_type + (":" + kind if kind else "")] += 1
        return _cb.BaseComm._frw_orig_publish(self, msg_type, data, metadata, buffers, **keys)
    _cb.BaseComm.publish_msg = _frw_publish
"""

SHOW_CELL = """
import json
from IPython.display import display
from flyte_run_widget.notebook.widget import RunWidget
_ws = [RunWidget(frw.Run.get(n)) for n in json.load(open({path!r}))]
for _w in _ws:
    display(_w)
"""

READ_COUNTS = "import json as _j, time as _t; print(_j.dumps({'t': _t.time(), 'counts': dict(_frw_counts)}))"


def msg_type(payload: Any) -> str:
    """The msg_type of a kernel websocket frame (JupyterLab's v1 binary protocol, or JSON)."""
    try:
        if isinstance(payload, str):
            msg = json.loads(payload)
            kind = msg["header"]["msg_type"]
            content = msg.get("content", {})
        else:
            n = struct.unpack_from("<Q", payload, 0)[0]
            offs = struct.unpack_from(f"<{n}Q", payload, 8)
            header = json.loads(payload[offs[1] : offs[2]])
            kind = header["msg_type"]
            content = json.loads(payload[offs[4] : offs[5]]) if kind == "comm_msg" else {}
        if kind == "comm_msg":
            kind += ":" + str(content.get("data", {}).get("method", ""))
        return str(kind)
    except Exception:
        return "unparsed"


class Frames:
    def __init__(self) -> None:
        self.log: list[tuple[float, str]] = []

    def attach(self, ws: Any) -> None:
        if "/api/kernels/" in ws.url:
            ws.on("framereceived", lambda payload: self.log.append((time.time(), msg_type(payload))))

    def between(self, t0: float, t1: float) -> Counter[str]:
        return Counter(k for t, k in self.log if t0 <= t <= t1)


def kernel_process(server: JupyterServer) -> psutil.Process:
    assert server.proc is not None
    for p in psutil.Process(server.proc.pid).children(recursive=True):
        try:
            if "ipykernel" in " ".join(p.cmdline()):
                return p
        except psutil.Error:
            continue
    raise RuntimeError("no ipykernel process under the Jupyter server")


def window(page: Any, kernel: psutil.Process, frames: Frames, seconds: float) -> dict[str, Any]:
    c0 = json.loads(page.evaluate(KERNEL_EXEC, READ_COUNTS).strip().splitlines()[-1])
    t0 = time.time()
    cpu0 = kernel.cpu_times()
    page.wait_for_timeout(seconds * 1000)
    cpu1 = kernel.cpu_times()
    t1 = time.time()
    c1 = json.loads(page.evaluate(KERNEL_EXEC, READ_COUNTS).strip().splitlines()[-1])
    t2 = time.time()
    wall = t1 - t0
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    kernel_msgs = Counter(c1["counts"]) - Counter(c0["counts"])
    browser = frames.between(t0, t2)
    return {
        "seconds": wall,
        "kernel_cpu_s": cpu,
        "kernel_cpu_pct": cpu / wall * 100,
        "kernel_comm_msgs": dict(kernel_msgs),
        "kernel_comm_per_s": sum(kernel_msgs.values()) / wall,
        "browser_frames": dict(browser),
        "browser_per_s": sum(browser.values()) / (t2 - t0),
        "threads": kernel.num_threads(),
        "rss_mb": kernel.memory_info().rss / 2**20,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--widgets", type=int, default=50)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--pyspy", action="store_true", help="py-spy record the kernel during the window")
    args = ap.parse_args()
    seconds = args.seconds or (15.0 if args.quick else 60.0)
    floor_s = 10.0 if args.quick else 20.0
    chromium = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:
        print("widgets_idle: skipped (needs Debian's chromium and playwright)")
        return 0
    rec = Record("widgets_idle")
    m = machine()
    m["chromium"] = chromium_version(chromium)
    tmp = Path(tempfile.mkdtemp(prefix="frw-bench-idle-"))
    res: dict[str, Any] = {}
    try:
        with Service(tmp / "data") as svc:
            stub = rs_grpc.RunServiceStub(grpc.insecure_channel(svc.endpoint))
            task = container_task(["sleep", "3600"], name="bench.silent")
            names = [
                stub.CreateRun(rs.CreateRunRequest(task_spec=task, project_id=PID)).run.action.id.run.name
                for _ in range(args.widgets)
            ]
            names_file = tmp / "names.json"
            names_file.write_text(json.dumps(names))
            server = JupyterServer(tmp / "lab")
            server.start()
            pw = sync_playwright().start()
            try:
                browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.set_default_timeout(60_000)
                page = context.new_page()
                frames = Frames()
                page.on("websocket", frames.attach)
                lab = Lab(server, page, "idle")
                nb = lab.write_notebook(
                    "bench_idle",
                    [
                        code_cell(setup_cell(svc.endpoint) + COUNT_CELL),
                        code_cell(SHOW_CELL.format(path=str(names_file))),
                    ],
                )
                lab.open(nb)
                kernel = kernel_process(server)
                # Floor: cell 1 only (the package imported and pointed at the service, no widget).
                page.evaluate(KERNEL_EXEC, setup_cell(svc.endpoint) + COUNT_CELL)
                page.wait_for_timeout(2000)
                res["floor"] = window(page, kernel, frames, floor_s)
                t_cell = time.time()
                lab.run_all()
                lab.wait_for(
                    lambda: (
                        page.evaluate(
                            "() => [...document.querySelectorAll('.frw .frw-badge')]"
                            ".filter((b) => b.dataset.phase === 'running').length"
                        )
                        >= args.widgets
                    ),
                    f"{args.widgets} badges showing running",
                    120,
                )
                res["all_running_s"] = time.time() - t_cell
                page.wait_for_timeout(5000)
                spy = None
                if args.pyspy:
                    RAW.mkdir(parents=True, exist_ok=True)
                    out = RAW / f"widgets_idle-kernel-{int(time.time())}.txt"
                    spy = subprocess.Popen(
                        [
                            str(Path(sys.executable).parent / "py-spy"),
                            "record",
                            "--pid",
                            str(kernel.pid),
                            "--format",
                            "raw",
                            "--duration",
                            str(int(seconds)),
                            "--threads",
                            "-o",
                            str(out),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    res["pyspy"] = str(out)
                res["widgets"] = window(page, kernel, frames, seconds)
                if spy is not None:
                    spy.wait(60)
                res["badges"] = page.evaluate("() => document.querySelectorAll('.frw .frw-badge').length")
                browser.close()
            finally:
                pw.stop()
                server.shutdown_kernels()
                server.stop()
            for n in names:
                stub.AbortRun(
                    rs.AbortRunRequest(run_id=ids.RunIdentifier(project=PID.name, domain=PID.domain, name=n))
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    f, w = res["floor"], res["widgets"]

    def kinds(c: dict[str, int]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(c.items(), key=lambda kv: -kv[1])) or "none"

    text = "\n".join(
        [
            f"## {args.widgets} live widgets on silent running runs",
            "",
            f"Machine: {machine_line(m)}; Chromium {m['chromium']}",
            "",
            f"JupyterLab kernel with the page open; {args.widgets} RunWidgets displayed in one cell, all "
            f"badges 'running' {res['all_running_s']:.1f} s after the cell started; window {w['seconds']:.0f} s "
            f"(floor: the same kernel before any widget, {f['seconds']:.0f} s).",
            "",
            "| figure | floor (no widget) | 50 widgets | target |",
            "|---|---:|---:|---|",
            f"| kernel CPU, % of one core | {f['kernel_cpu_pct']:.2f} % | {w['kernel_cpu_pct']:.2f} % | "
            f"≤ 2 %: {'met' if w['kernel_cpu_pct'] <= 2 else 'not met'} |",
            f"| kernel comm messages/s (kernel-side count) | {f['kernel_comm_per_s']:.2f} | "
            f"{w['kernel_comm_per_s']:.2f} | |",
            f"| websocket frames/s received by the page (all kernel → browser) | {f['browser_per_s']:.2f} | "
            f"{w['browser_per_s']:.2f} | ≤ 20/s: {'met' if w['browser_per_s'] <= 20 else 'not met'} |",
            f"| kernel threads, RSS MB | {f['threads']}, {f['rss_mb']:.0f} | {w['threads']}, {w['rss_mb']:.0f} | |",
            "",
            f"Frames by type in the window: {kinds(w['browser_frames'])}. Kernel comm messages: "
            f"{kinds(w['kernel_comm_msgs'])}. Floor frames: {kinds(f['browser_frames'])}.",
            "",
        ]
    )
    print(text)
    print(f"saved {save('widgets_idle', text, {'machine': m, 'args': vars(args), **res})}", file=sys.stderr)
    floor = f"same kernel, no widget ({f['seconds']:.0f} s)"
    rec.write(
        [
            figure(
                f"{args.widgets} idle widgets: kernel CPU ({w['seconds']:.0f} s window)",
                w["kernel_cpu_pct"],
                "% of a core",
                baseline=floor,
                baseline_value=f["kernel_cpu_pct"],
                target=("<=", 2.0, "value"),
            ),
            figure(
                f"{args.widgets} idle widgets: kernel → browser frames",
                w["browser_per_s"],
                "/s",
                baseline=floor,
                baseline_value=f["browser_per_s"],
                target=("<=", 20.0, "value"),
            ),
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
