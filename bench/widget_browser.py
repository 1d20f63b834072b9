"""Kernel → browser: N log lines (1,000,000 by default) through the widget in a real Chromium in
JupyterLab, against the same kind of lines printed into a plain cell output.

    python bench/widget_browser.py                  # widget 1M; baselines 100k (+ 1M, bounded)
    python bench/widget_browser.py --quick          # widget 100k; baselines 20k, no 1M baseline
    python bench/widget_browser.py --lines 300000 --baseline-lines 50000 --baseline-1m-timeout 60
    python bench/widget_browser.py --widget-only --trace   # + each long task broken down (Chrome trace)
    python bench/widget_browser.py --playwright     # pages driven by Playwright (the old way)

Driver: each scenario gets its own Chromium (Debian's, Playwright's launch switches) driven over a
bare CDP connection that enables only Page, Runtime and Emulation. Playwright enables the Network
domain on every page it controls, and Chromium then copies every websocket frame the page receives
(base64, on the page's main thread) to the driver: for 1M lines that cost ~4 CPU-s on 2 cores
(renderer, browser process, driver, this script) and made the page's main thread compete for CPU.
--playwright measures that way for comparison.

Scenarios, each in a fresh browser context, notebook and kernel:

  widget          a cell starts a task (a Python function writing N numbered 65-byte lines to
                  sys.stdout, 10,000 per write) on the embedded Run service and shows `run`
                  (the widget). JupyterLab with jupyter_server's default iopub limits.
  print           the baseline: a cell that `print`s the same lines one by one, on the same
                  JupyterLab server (default limits: ~1 MB/s of stream data, the excess dropped)
  print-unlimited the same cell on a second JupyterLab server with both iopub limits lifted, so
                  every line reaches the page; also tried with N lines and a bounded timeout

Figures (the browser's and the kernel's clocks are the same machine clock):

  last line visible   Date.now() in the first animation frame in which the line numbered N-1 is
                      in the DOM: in the widget, a row inside the viewport's visible rectangle;
                      in a plain output, the tail of the output area's text
  ... after service   from the service's timestamp of that line (the widget's wire form carries
                      it) or, for print, from the end of the kernel's print loop
  ... after cell      from the first statement of the cell (kernel time.time())
  longest task        the longest `longtask` entry (a PerformanceObserver installed before the
                      page loads) between cell start and last line visible; entries exist only
                      for tasks >= 50 ms, so the longest gap between animation frames is given
                      as well (it also sees rendering work and shorter stalls)
  JS heap             CDP Runtime.getHeapUsage at the end, and after a forced GC
  messages/s          RunWidget.send calls (wrapped in the kernel before the run), over the time
                      from first to last send, and the most in any one second
  CPU seconds         /proc: CPU used from run-all to last line visible by this bench's processes
                      (Chromium renderers, the rest of Chromium, kernel, jupyter_server, Run service
                      and its task) and by the rest of the machine (other processes)
  --trace             the page's main thread in a Chrome trace, cell start → last line visible:
                      every task's wall and thread CPU time; for each task ≥ 50 ms its trace events
                      by self time (GC, layout, paint, JS calls) and the JS functions sampled in it

Machine facts, a markdown table on stdout and in bench/results/raw/ with a JSON copy, and a
screenshot of the widget after the run there too; the headline figures in
bench/results/widget_browser.json (committed; see bench/_record.py).

JupyterLab, the kernelspec and Chromium come from tests/browser/conftest.py (reused, not copied);
the Run service is bench/_service.py's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from _cdp import RawContext, heap_mb
from _chrome_trace import TRACE_CATEGORIES, cpu_profile_top, trace_main_thread
from _proc_cpu import cpu_snapshot, cpu_split, renice_renderers
from _record import Record, figure
from _service import RAW, Service, machine, save

from tests.browser.conftest import (
    CHROMIUM_ARGS,
    JupyterServer,
    Lab,
    _chromium,
    code_cell,
    setup_cell,
)

TAIL = " the quick brown fox jumps over the lazy dog 0123456789"  # 64 bytes + newline per line

# Installed before any page script runs: long tasks and long animation frames of the whole page.
INIT_SCRIPT = """
(() => {
  const b = (window.__frwBench = { long: [], loaf: [] })
  try {
    new PerformanceObserver((l) => { for (const e of l.getEntries()) b.long.push([e.startTime, e.duration]) })
      .observe({ type: 'longtask', buffered: true })
  } catch (e) { b.longError = String(e) }
  try {
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) b.loaf.push([e.startTime, e.duration, e.blockingDuration || 0])
    }).observe({ type: 'long-animation-frame', buffered: true })
  } catch (e) { b.loafError = String(e) }
})()
"""

# A per-frame probe: when the target line becomes visible, the largest gap between frames.
MONITOR = """
({ kind, target, t0 }) => {
  const b = window.__frwBench
  b.kind = kind; b.target = target; b.t0 = t0; b.seen = null; b.firstRow = null; b.complete = null
  b.maxGap = 0; b.maxGapAt = 0; b.gaps = []; b.frames = 0; b.tailChanged = Date.now(); b.tail = ''
  b.stop = false
  let prev = performance.now()
  const deepLast = (n) => { while (n && n.lastChild) n = n.lastChild; return n }
  const tick = () => {
    if (b.stop) return
    const now = performance.now()
    const gap = now - prev
    prev = now
    b.frames++
    if (gap > b.maxGap) { b.maxGap = gap; b.maxGapAt = Date.now() }
    if (gap > 50) b.gaps.push([Date.now(), gap])
    if (now - (b.pushed || 0) > 250 || (b.seen !== null && !b.pushedSeen)) {
      // Push the state out: the bench never has to ask a page that may be frozen for minutes.
      b.pushed = now; b.pushedSeen = b.seen !== null
      const o = performance.timeOrigin, t0 = b.t0 || 0
      const longest = b.long.reduce((m, e) => (o + e[0] >= t0 ? Math.max(m, e[1]) : m), 0)
      window.__frwReport({ seen: b.seen, firstRow: b.firstRow, complete: b.complete, count: b.count || '',
        tailChanged: b.tailChanged, tailNum: b.tailNum ?? null, frames: b.frames, at: Date.now(),
        heap: b.heap, longest, maxGap: b.maxGap })
      if (now - (b.heapAt || 0) > 2000 && performance.memory) {  // the getter is not free
        b.heapAt = now; b.heap = performance.memory.usedJSHeapSize
      }
    }
    if (kind === 'widget') {
      const vp = document.querySelector('.frw .frw-viewport')
      const rows = document.querySelectorAll('.frw .frw-row')
      if (rows.length && b.firstRow === null) b.firstRow = Date.now()
      if (b.seen === null && vp) {
        for (const r of rows) {
          if (r.textContent.startsWith(target)) {  // geometry (a forced layout) only for that row
            const box = vp.getBoundingClientRect()
            const rb = r.getBoundingClientRect()
            if (rb.top >= box.top - 1 && rb.bottom <= box.bottom + 1) { b.seen = Date.now(); break }
          }
        }
      }
      const c = document.querySelector('.frw .frw-count')
      b.count = c ? c.textContent : ''
      if (b.complete === null && b.count.includes('complete')) b.complete = Date.now()
    } else {
      const out = document.querySelector('.jp-Notebook .jp-Cell .jp-OutputArea-output')  // the print cell is the only cell
      if (out && b.firstRow === null) b.firstRow = Date.now()
      const last = deepLast(out)
      const text = last ? String(last.textContent).slice(-300) : ''
      if (text !== b.tail) {
        b.tail = text; b.tailChanged = Date.now()
        const m = text.match(/(\\d{8}) the quick[^\\n]*\\n?$/)
        if (m) b.tailNum = Number(m[1])
      }
      if (b.seen === null && text.includes(target)) b.seen = Date.now()
    }
    requestAnimationFrame(tick)
  }
  requestAnimationFrame(tick)
  return true
}
"""


# Run code in the page's kernel (idle by then) and return what it prints.
KERNEL_EXEC = """
async (code) => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel
  const f = k.requestExecute({ code, silent: false, store_history: false })
  let out = ''
  f.onIOPub = (msg) => {
    if (msg.header.msg_type === 'stream') out += msg.content.text
    if (msg.header.msg_type === 'error') out += 'ERROR ' + msg.content.ename + ': ' + msg.content.evalue
  }
  await f.done
  return out
}
"""

VIEW_STATE = """
() => {
  const vp = document.querySelector('.frw .frw-viewport')
  const rows = [...document.querySelectorAll('.frw .frw-row')].map((r) => r.textContent.slice(0, 8))
  return { scrollTop: vp && vp.scrollTop, scrollHeight: vp && vp.scrollHeight, clientHeight: vp && vp.clientHeight,
           rows: rows.length, first: rows[0], last: rows[rows.length - 1], visibility: document.visibilityState,
           focus: document.hasFocus(), frames: window.__frwBench.frames }
}
"""

WIDGET_CELL = """
import time as _time
import json as _json
from flyte_run_widget.notebook.widget import RunWidget as _RW
_bench = {{"sends": [], "widgets": []}}
if not hasattr(_RW, "_bench_orig_send"):
    _RW._bench_orig_send = _RW.send
def _bench_send(self, content, buffers=None):
    n = (content.get("count") or len(content.get("lines", ()))) if isinstance(content, dict) else 0
    _bench["sends"].append((_time.time(), n))
    if self not in _bench["widgets"]:
        _bench["widgets"].append(self)
    return _RW._bench_orig_send(self, content, buffers)
_RW.send = _bench_send

def print_lines(n: int) -> int:
    import sys
    w = sys.stdout.write
    tail = {tail!r}
    for s in range(0, n, 10000):
        w("".join([f"{{i:08d}}{{tail}}\\n" for i in range(s, min(n, s + 10000))]))
    sys.stdout.flush()
    return n
"""

# A cell of its own, so the screenshot shows the widget next to a short cell.
WIDGET_RUN_CELL = """_t_cell = _time.time(); _cpu_cell = _time.process_time()
run = frw.run(print_lines, n={n})
run
"""

WIDGET_STATS = """
import json as _json, time as _time
_w = _bench["widgets"][0] if _bench["widgets"] else run.widget()
_target = "{target}"
_last_ts = None
for _log in _w._logs.values():
    for _b in reversed(_log.blocks):  # column blocks, newest last
        _hits = [_i for _i in range(len(_b) - 1, -1, -1) if _b.texts[_i].startswith(_target)]
        if _hits:
            _last_ts = _b.stamps[_hits[0]]
            break
_s = _bench["sends"]
_per_sec = {{}}
for _t, _n in _s:
    _per_sec[int(_t)] = _per_sec.get(int(_t), 0) + 1
print(_json.dumps({{
    "t_cell": _t_cell, "last_line_ts_ms": _last_ts, "end_ms": _w.end_ms, "start_ms": _w.start_ms,
    "phase": _w.phase, "sends": len(_s), "lines_sent": sum(n for _, n in _s),
    "first_send": _s[0][0] if _s else None, "last_send": _s[-1][0] if _s else None,
    "max_sends_per_s": max(_per_sec.values()) if _per_sec else 0,
    "max_lines_per_send": max((n for _, n in _s), default=0),
    "kernel_total": {{a: l.total for a, l in _w._logs.items()}},
    "kernel_cpu_s": _time.process_time() - _cpu_cell,
}}))
"""

PRINT_CELL = """
import time as _time
_t_cell = _time.time(); _cpu_cell = _time.process_time()
import sys as _sys
_tail = {tail!r}
for _i in range({n}):
    print(f"{{_i:08d}}{{_tail}}")
_sys.stdout.flush()
_t_end = _time.time(); _cpu_end = _time.process_time()
import json as _json
with open({stats_file!r}, "w") as _f:
    _json.dump({{"t_cell": _t_cell, "t_end": _t_end, "kernel_cpu_s": _cpu_end - _cpu_cell}}, _f)
"""


# Lines in the output area at the end, and whether the rate-limit warning is shown.
PRINT_DOM = """
() => {
  const outs = [...document.querySelectorAll('.jp-Notebook .jp-Cell')][0]?.querySelectorAll('.jp-OutputArea-output') || []
  let lines = 0, warned = false, chars = 0
  for (const o of outs) {
    const t = o.textContent
    chars += t.length
    if (t.includes('IOPub data rate exceeded')) warned = true
    const m = t.match(/^\\d{8} the quick/gm)
    lines += m ? m.length : 0
  }
  return { outputs: outs.length, lines, warned, chars }
}
"""


class Bench:
    def __init__(
        self, browser: Any, results: Path, stamp: str, profile: bool = False, trace: bool = False
    ) -> None:
        self.profile = profile
        self.trace = trace
        self.renice: int | None = None
        self.raw: str | None = None  # a Chromium binary: pages driven by RawCDP, not Playwright
        self.browser = browser
        self.results = results
        self.stamp = stamp

    def _page(self, server: JupyterServer, name: str) -> tuple[Any, Any, Lab]:
        viewport = {"width": 1280, "height": 900}
        if self.raw:
            context: Any = RawContext(self.raw, viewport)
        else:
            context = self.browser.new_context(viewport=viewport)
        context.set_default_timeout(60_000)
        context.add_init_script(INIT_SCRIPT)
        self.state: dict[str, Any] = {}
        context.expose_function("__frwReport", self._on_report)
        page = context.new_page()
        lab = Lab(server, page, name)
        return context, page, lab

    def _on_report(self, state: dict[str, Any]) -> None:
        state["received"] = time.time() * 1000
        gap = state["received"] - self.state.get("received", state["received"])
        state["max_report_gap_ms"] = max(self.state.get("max_report_gap_ms", 0), gap)
        self.state = state

    def _finish_page(self, page: Any, cdp: Any, t0_ms: float, t1_ms: float) -> dict[str, Any]:
        """Long tasks / frames between t0 and t1 (epoch ms), heap now and after a GC."""
        perf = page.evaluate(
            """([t0, t1]) => {
                 const b = window.__frwBench; b.stop = true
                 const o = performance.timeOrigin
                 const inWin = (s) => o + s >= t0 && o + s <= t1
                 const long = b.long.filter((e) => inWin(e[0]))
                 const loaf = b.loaf.filter((e) => inWin(e[0]))
                 const mx = (a, i) => a.reduce((m, e) => Math.max(m, e[i]), 0)
                 const gaps = b.gaps.filter((g) => g[0] >= t0 && g[0] <= t1 + 60000)
                 return {
                   longest_task_ms: mx(long, 1), long_tasks: long.length,
                   long_task_total_ms: long.reduce((s, e) => s + e[1], 0),
                   longest_loaf_ms: mx(loaf, 1), loaf_blocking_ms: mx(loaf, 2),
                   max_frame_gap_ms: gaps.reduce((m, g) => Math.max(m, g[1]), 0),
                   frames: b.frames, longError: b.longError || null, loafError: b.loafError || null,
                   dom_nodes: document.getElementsByTagName('*').length,
                 }
               }""",
            [t0_ms, t1_ms],
        )
        perf["heap_end_mb"] = heap_mb(cdp)
        cdp.send("HeapProfiler.collectGarbage")
        perf["heap_after_gc_mb"] = heap_mb(cdp)
        return perf

    def _wait(self, page: Any, timeout: float, done: Any) -> tuple[dict[str, Any], bool]:
        """Wait on the state the page pushes; a frozen page pushes nothing and is never asked."""
        deadline = time.monotonic() + timeout
        while True:
            if done(self.state):
                return self.state, True
            if time.monotonic() >= deadline:
                return self.state, False
            page.wait_for_timeout(100)  # a driver-side timer that lets the page's reports in

    # -- scenarios ---------------------------------------------------------------------------

    def widget(self, server: JupyterServer, endpoint: str, n: int, timeout: float) -> dict[str, Any]:
        name = f"widget-{n}"
        context, page, lab = self._page(server, name)
        try:
            src = setup_cell(endpoint) + WIDGET_CELL.format(tail=TAIL, n=n)
            nb = lab.write_notebook(f"bench_{name}", [code_cell(src), code_cell(WIDGET_RUN_CELL.format(n=n))])
            lab.open(nb)
            cdp = context.new_cdp_session(page)
            heap_before = heap_mb(cdp)
            target = f"{n - 1:08d} "
            page.evaluate(MONITOR, {"kind": "widget", "target": target, "t0": time.time() * 1000})
            if self.profile:
                cdp.send("Profiler.enable")
                cdp.send("Profiler.setSamplingInterval", {"interval": 500})
                cdp.send("Profiler.start")
            if self.trace:
                if self.raw:
                    context.start_tracing(TRACE_CATEGORIES)
                else:
                    self.browser.start_tracing(page=page, categories=TRACE_CATEGORIES)
            if self.renice is not None:
                print(
                    f"  reniced {renice_renderers(self.renice)} renderer threads to {self.renice}",
                    file=sys.stderr,
                )
            cpu0 = cpu_snapshot()
            lab.run_all()
            state, ok = self._wait(page, timeout, lambda s: s.get("seen"))
            cpu = cpu_split(cpu0, cpu_snapshot())
            profile = cpu_profile_top(cdp.send("Profiler.stop")["profile"]) if self.profile else None
            raw = None
            if self.trace:
                raw = context.stop_tracing() if self.raw else self.browser.stop_tracing()
            if ok:  # the count says "complete" once the done flag arrives; give it a moment
                state, _ = self._wait(page, 10, lambda s: s.get("complete"))
            kernel = json.loads(
                page.evaluate(KERNEL_EXEC, WIDGET_STATS.format(target=target)).strip().splitlines()[-1]
            )
            t_cell_ms = kernel["t_cell"] * 1000
            seen = state.get("seen")
            if not seen:  # what the view shows instead
                print("  not seen:", page.evaluate(VIEW_STATE), file=sys.stderr)
            tasks = None
            if raw is not None:
                (self.results / f"widget_browser-{self.stamp}-widget-{n}.trace.json").write_bytes(raw)
                # trace timestamps are CLOCK_MONOTONIC µs (Linux), like time.monotonic()
                off_ms = (time.time() - time.monotonic()) * 1000
                window = ((t_cell_ms - off_ms) * 1000, ((seen or time.time() * 1000) - off_ms) * 1000)
                tasks = trace_main_thread(json.loads(raw), window)
            perf = self._finish_page(page, cdp, t_cell_ms, seen or time.time() * 1000)
            shot = self.results / f"widget_browser-{self.stamp}-widget-{n}.png"
            lab.command("application:toggle-left-area")  # more room for the widget
            page.wait_for_timeout(300)
            if not self.raw:
                page.locator(".frw").scroll_into_view_if_needed()
                page.locator(".frw").screenshot(path=str(shot))
            else:
                page.screenshot(path=str(shot))
            page.screenshot(path=str(shot.with_name(shot.stem + "-page.png")))
            last_ts = kernel.get("last_line_ts_ms")
            sends, first_send, last_send = kernel["sends"], kernel["first_send"], kernel["last_send"]
            span = (last_send - first_send) if sends > 1 else 0.0
            return {
                "scenario": "widget",
                "lines": n,
                "finished": bool(seen),
                "timeout_s": timeout,
                "visible_after_service_s": (seen - last_ts) / 1000 if seen and last_ts else None,
                "visible_after_task_end_s": (seen - kernel["end_ms"]) / 1000
                if seen and kernel["end_ms"]
                else None,
                "visible_after_cell_s": (seen - t_cell_ms) / 1000 if seen else None,
                "first_row_after_cell_s": (state["firstRow"] - t_cell_ms) / 1000
                if state.get("firstRow")
                else None,
                "complete_after_cell_s": (state["complete"] - t_cell_ms) / 1000
                if state.get("complete")
                else None,
                "task_s": (kernel["end_ms"] - kernel["start_ms"]) / 1000 if kernel["end_ms"] else None,
                "count_text": state.get("count", ""),
                "phase": kernel["phase"],
                "messages": sends,
                "messages_per_s": sends / span if span > 0 else float(sends),
                "max_messages_in_1s": kernel["max_sends_per_s"],
                "max_lines_per_message": kernel["max_lines_per_send"],
                "lines_sent": kernel["lines_sent"],
                "kernel_lines": kernel["kernel_total"],
                "send_span_s": span,
                "kernel_cpu_s": kernel["kernel_cpu_s"],
                "heap_before_mb": heap_before,
                "profile_top": profile,
                "trace": tasks,
                "cpu_split": cpu,
                "screenshot": str(shot.relative_to(RAW.parents[2])),
                **perf,
            }
        finally:
            context.close()
            server.shutdown_kernels()

    def printed(self, server: JupyterServer, n: int, timeout: float, label: str) -> dict[str, Any]:
        name = f"{label}-{n}"
        context, page, lab = self._page(server, name)
        try:
            stats_file = server.root / f"bench_{name}.json"
            stats_file.unlink(missing_ok=True)
            cell = PRINT_CELL.format(tail=TAIL, n=n, stats_file=str(stats_file))
            nb = lab.write_notebook(f"bench_{name}", [code_cell(cell)])
            lab.open(nb)
            cdp = context.new_cdp_session(page)
            heap_before = heap_mb(cdp)
            target = f"{n - 1:08d} "
            t_click = time.time() * 1000
            page.evaluate(MONITOR, {"kind": "print", "target": target, "t0": t_click})
            lab.run_all()

            # Done when the last line is shown, or (lines dropped by the rate limit) when the
            # print loop is over, the page is responsive and the output has not changed for 5 s.
            def done(s: dict[str, Any]) -> bool:
                if s.get("seen"):
                    return True
                now = time.time() * 1000
                return (
                    stats_file.exists()
                    and s.get("at", 0) > now - 1000
                    and s.get("tailChanged", now) < now - 5000
                    and (s.get("firstRow") or 0) > 0
                )

            state, ok = self._wait(page, timeout, done)
            try:
                stats = json.loads(stats_file.read_text())
            except (OSError, ValueError) as e:  # the print loop had not ended by the timeout
                stats = {"error": str(e)}
            t_cell_ms = stats.get("t_cell", t_click / 1000) * 1000
            seen = state.get("seen")
            if ok:
                end_ms = seen if seen else state["tailChanged"]
                perf = self._finish_page(page, cdp, t_cell_ms, end_ms)
                dom = page.evaluate(PRINT_DOM)
                page.screenshot(path=str(self.results / f"widget_browser-{self.stamp}-{name}.png"))
            else:  # the page may stay frozen for minutes: use only what it last pushed
                end_ms = time.time() * 1000
                frozen_for = end_ms - state.get("at", t_click)
                perf = {
                    "longest_task_ms": state.get("longest", 0),
                    "long_tasks": -1,
                    "long_task_total_ms": 0.0,
                    "max_frame_gap_ms": max(state.get("maxGap", 0), frozen_for),
                    "heap_end_mb": (state.get("heap") or 0) / 2**20,
                    "heap_after_gc_mb": None,
                    "frozen_at_end_ms": frozen_for,
                    "max_report_gap_ms": state.get("max_report_gap_ms"),
                }
                tail = state.get("tailNum")
                dom = {"lines": (tail + 1) if tail is not None else 0, "warned": False, "partial": True}
            return {
                "scenario": label,
                "lines": n,
                "finished": bool(seen),
                "settled": ok,
                "timeout_s": timeout,
                "visible_after_service_s": (seen - stats["t_end"] * 1000) / 1000
                if seen and "t_end" in stats
                else None,
                "visible_after_cell_s": (seen - t_cell_ms) / 1000 if seen else None,
                "settled_after_cell_s": (end_ms - t_cell_ms) / 1000 if ok else None,
                "first_row_after_cell_s": (state["firstRow"] - t_cell_ms) / 1000
                if state.get("firstRow")
                else None,
                "print_loop_s": stats["t_end"] - stats["t_cell"] if "t_end" in stats else None,
                "kernel_cpu_s": stats.get("kernel_cpu_s"),
                "lines_shown": dom["lines"],
                "lines_shown_partial": bool(dom.get("partial")),
                "rate_limit_warning": dom["warned"],
                "heap_before_mb": heap_before,
                **perf,
            }
        finally:
            context.close()
            server.shutdown_kernels()


def lift_iopub_limits(server: JupyterServer) -> None:
    """Edit this server's own (temporary) config: no iopub message or data rate limit."""
    path = Path(server.env["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.json"
    cfg = json.loads(path.read_text())
    # jupyter_server 2.x: the ServerApp.iopub_* options are deprecated and no longer applied.
    cfg["ZMQChannelsWebsocketConnection"] = {"limit_rate": False}
    path.write_text(json.dumps(cfg))


def chromium_version(path: str) -> str:
    try:
        return subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def fmt(v: Any, unit: str = "", digits: int = 2) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}{unit}"
    if isinstance(v, int):
        return f"{v:,}{unit}"
    return f"{v}{unit}"


def ratio(a: Any, b: Any) -> str:
    if not a or not b:
        return "—"
    return f"{a / b:.2f}×"


def report(results: list[dict[str, Any]], m: dict[str, str], args: argparse.Namespace) -> str:
    w = next(r for r in results if r["scenario"] == "widget")
    out = [
        f"# Kernel → browser: {w['lines']:,} log lines through the widget in Chromium (JupyterLab)",
        "",
        f"Command: `python bench/widget_browser.py{' --quick' if args.quick else ''}"
        f"{' --playwright' if args.playwright else ''}`"
        + (f" (lines {args.lines}, baseline {args.baseline_lines})" if not args.quick else "")
        + (
            " — pages driven by Playwright"
            if args.playwright
            else " — pages driven over a bare CDP connection"
        ),
        "",
        f"Machine: nproc {m['nproc']}, {m['cpu']}, {m['chromium']}, Python {m['python']}, "
        f"JupyterLab {m['jupyterlab']}, jupyter_server {m['jupyter_server']}, load avg at start {m['loadavg']}",
        "",
        "| scenario | lines | last line visible after service / print end | after cell start | first line after cell start | "
        "longest task (≥50 ms) | long tasks (total) | longest frame gap | JS heap end (after GC), before | "
        "lines shown | kernel msgs (msgs/s, max in 1 s) | kernel CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r["finished"]:
            vis = fmt(r["visible_after_service_s"], " s")
            cell = fmt(r["visible_after_cell_s"], " s")
        elif r.get("settled"):
            vis = "never (last line dropped)"
            cell = f"settled {fmt(r['settled_after_cell_s'], ' s')}, last line never shown"
        else:
            vis = f"did not finish in {r['timeout_s']:.0f} s"
            cell = vis
        if r["scenario"] == "widget":
            shown = f"{r['count_text']}"
            msgs = f"{r['messages']} ({r['messages_per_s']:.1f}/s, {r['max_messages_in_1s']})"
        else:
            shown = f"{r['lines_shown']:,} of {r['lines']:,}" + (
                " + rate-limit warning" if r["rate_limit_warning"] else ""
            )
            if r.get("lines_shown_partial"):
                shown = f"last line in the DOM when we stopped: {r['lines_shown'] - 1:08d}"
            msgs = "(stream)"
        lt = fmt(r["longest_task_ms"], " ms", 0) if r["long_tasks"] else "none"
        if r["long_tasks"] < 0:
            lt = (
                f"≥ {r['longest_task_ms']:,.0f} ms; frozen for the last {r['frozen_at_end_ms'] / 1000:,.0f} s"
            )
        out.append(
            f"| {r['scenario']} | {r['lines']:,} | {vis} | {cell} | {fmt(r['first_row_after_cell_s'], ' s')} | {lt} | "
            f"{r['long_tasks'] if r['long_tasks'] >= 0 else '?'} ({r['long_task_total_ms']:,.0f} ms) | "
            f"{fmt(r['max_frame_gap_ms'], ' ms', 0)} | "
            f"{r['heap_end_mb']:.1f} MB ({fmt(r['heap_after_gc_mb'], '', 1)}), {r['heap_before_mb']:.1f} MB | "
            f"{shown} | {msgs} | "
            f"{fmt(r['kernel_cpu_s'], '', 2)} |"
        )
    out.append("")
    out.append(
        f"Widget: task ran {fmt(w['task_s'], ' s')} in the service; last line visible "
        f"{fmt(w['visible_after_task_end_s'], ' s')} after the task's end time; count "
        f"'complete' {fmt(w['complete_after_cell_s'], ' s')} after cell start; {w['lines_sent']:,} lines sent in "
        f"{w['messages']} messages over {w['send_span_s']:.2f} s (at most {w['max_lines_per_message']:,} lines each); "
        f"{w['dom_nodes']:,} DOM nodes in the page at the end; phase {w['phase']}."
    )
    bases = [r for r in results if r["scenario"] != "widget"]
    if bases:

        def vis_s(r: dict[str, Any]) -> float | None:
            return r["visible_after_cell_s"] if r["finished"] else r.get("settled_after_cell_s")

        wv = {
            "vis": w["visible_after_cell_s"],
            "lps": w["lines"] / w["visible_after_cell_s"] if w["visible_after_cell_s"] else None,
        }
        out += [
            "",
            f"Ratios in this run: the widget ({w['lines']:,} lines) / each plain-output baseline, in brackets. "
            "Below 1× the widget is faster, blocks less or holds less; for lines/s above 1× is better. "
            "`print` = jupyter_server's default iopub limits (what a user gets), `print-unlimited` = both "
            "limits lifted (every line reaches the page).",
            "",
            "| figure | widget | " + " | ".join(f"{b['scenario']} {b['lines']:,}" for b in bases) + " |",
            "|---|---:|" + "---:|" * len(bases),
        ]
        row = [f"| last line visible after cell start | {fmt(wv['vis'], ' s')} |"]
        for b in bases:
            if b["finished"]:
                row.append(f" {fmt(vis_s(b), ' s')} ({ratio(wv['vis'], vis_s(b))}) |")
            elif b.get("settled"):
                row.append(f" never; output settled at {fmt(vis_s(b), ' s')} |")
            else:
                row.append(
                    f" did not finish in {b['timeout_s']:.0f} s (< {wv['vis'] / b['timeout_s']:.2f}×) |"
                    if wv["vis"]
                    else " — |"
                )
        out.append("".join(row))
        row = [f"| lines shown per second of wall time | {fmt(wv['lps'], '', 0)} |"]
        for b in bases:
            t = vis_s(b) or b["timeout_s"]
            lps = b["lines_shown"] / t if t else None
            row.append(f" {fmt(lps, '', 0)} ({ratio(wv['lps'], lps)}) |")
        out.append("".join(row))
        for label, key, unit, digits in (
            ("longest task", "longest_task_ms", " ms", 0),
            ("longest frame gap", "max_frame_gap_ms", " ms", 0),
            ("JS heap at end", "heap_end_mb", " MB", 1),
            ("JS heap after GC", "heap_after_gc_mb", " MB", 1),
        ):
            shown = fmt(w[key], unit, digits)
            if key == "longest_task_ms" and not w["long_tasks"]:
                shown = "none ≥ 50 ms"
            row = [f"| {label} | {shown} |"]
            for b in bases:
                prefix = "≥ " if key.startswith(("longest", "max")) and b.get("long_tasks", 0) < 0 else ""
                row.append(f" {prefix}{fmt(b.get(key), unit, digits)} ({ratio(w[key], b.get(key))}) |")
            out.append("".join(row))
    if w.get("profile_top"):
        out += [
            "",
            "Widget page, CPU profile (CDP Profiler, cell start → last line visible), self time:",
            "",
            "| function | self ms | share |",
            "|---|---:|---:|",
        ]
        out += [f"| `{p['function']}` | {p['self_ms']:,.0f} | {p['share']:.1%} |" for p in w["profile_top"]]
    tr = w.get("trace") or {}
    if tr:
        out += [
            "",
            f"Widget page, Chrome trace of the main thread (cell start → last line visible; times from "
            f"cell start): {tr['tasks']:,} tasks "
            f"over {tr['span_s']:.2f} s, {tr['wall_ms']:,.0f} ms wall and {tr['cpu_ms']:,.0f} ms thread CPU in "
            f"tasks; the most CPU any one task used: {tr['max_cpu_ms']:.1f} ms; tasks with ≥ 50 ms of CPU: "
            f"{tr['cpu_over_threshold']}; tasks ≥ 50 ms wall: {len(tr['long'])}.",
        ]
        for i, t in enumerate(tr["long"]):
            out += [
                "",
                f"Long task {i + 1}: {t['dur_ms']:.0f} ms wall, {fmt(t['cpu_ms'], ' ms', 1)} thread CPU, "
                f"at +{t['at_s']:.2f} s. Trace events by self time (ms): "
                + ", ".join(f"{k} {v:.1f}" for k, v in t["events"] if v >= 0.5)
                + ". JS samples (ms): "
                + ", ".join(f"{k} {v:.1f}" for k, v in t["js"] if v >= 0.5),
            ]
    split = w.get("cpu_split")
    if split:
        parts = [
            f"{k} {v:.2f}"
            for k, v in sorted(split.items(), key=lambda kv: -kv[1])
            if k not in ("machine busy", "wall s")
        ]
        out += [
            "",
            f"CPU seconds from run-all to last line visible ({split['wall s']:.2f} s × "
            f"{os.cpu_count()} cores = {split['wall s'] * (os.cpu_count() or 1):.2f} CPU s; machine busy "
            f"{split['machine busy']:.2f}): " + ", ".join(parts) + ".",
        ]
    out += ["", f"Screenshot: `{w['screenshot']}`", ""]
    return "\n".join(out)


def headline(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The summary's rows: the widget against plain printed output in the same run."""
    w = next(r for r in results if r["scenario"] == "widget")
    by = {(r["scenario"], r["lines"]): r for r in results if r["scenario"] != "widget"}
    printed = next((r for (s, _n), r in by.items() if s == "print"), None)
    free = next((r for (s, _n), r in by.items() if s == "print-unlimited"), None)

    def label(r: dict[str, Any] | None, what: str) -> str | None:
        return f"{r['scenario']} {r['lines']:,} lines, {what}" if r else None

    def shown_per_s(r: dict[str, Any]) -> float | None:
        t = (r["visible_after_cell_s"] if r["finished"] else r.get("settled_after_cell_s")) or r["timeout_s"]
        return (r["lines_shown"] if r["scenario"] != "widget" else r["lines"]) / t if t else None

    n = f"{w['lines']:,} lines"
    out = [
        figure(
            f"widget, {n}: last line visible after it left the service",
            w["visible_after_service_s"],
            "s",
            baseline=label(free, "after the print loop") if free and free["finished"] else None,
            baseline_value=free["visible_after_service_s"] if free and free["finished"] else None,
            target=("<=", 3.0, "value"),
        ),
        figure(
            f"widget, {n}: longest main-thread task while streaming",
            w["longest_task_ms"] if w["long_tasks"] else None,
            "ms",
            display=None if w["long_tasks"] else "none ≥ 50 ms",
            baseline=label(printed, "default iopub limits"),
            baseline_value=printed["longest_task_ms"] if printed else None,
            target=("<=", 50.0, "value"),
            met=not w["long_tasks"],
        ),
        figure(
            f"widget, {n}: JS heap of the page at the end",
            w["heap_end_mb"],
            "MB",
            baseline=label(free, "limits lifted"),
            baseline_value=free["heap_end_mb"] if free else None,
            target=("<=", 150.0, "value"),
        ),
    ]
    if free:
        out.append(
            figure(
                f"widget, {n}: lines shown per second, cell start → last line",
                shown_per_s(w),
                "lines/s",
                baseline=label(free, "limits lifted"),
                baseline_value=shown_per_s(free),
            )
        )
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="widget 100k lines, baselines 20k, no 1M baseline")
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--baseline-lines", type=int, default=100_000)
    p.add_argument("--baseline-1m-timeout", type=float, default=120, help="0 skips the N-line print baseline")
    p.add_argument("--timeout", type=float, default=180, help="widget and baseline timeout, s")
    p.add_argument("--skip-unlimited", action="store_true", help="no second server with iopub limits lifted")
    p.add_argument("--widget-only", action="store_true", help="no print baselines")
    p.add_argument(
        "--profile", action="store_true", help="CDP CPU profile of the widget page (adds overhead)"
    )
    p.add_argument(
        "--trace",
        action="store_true",
        help="Chrome trace of the widget page: each long task broken down (events, GC, JS samples)",
    )
    p.add_argument(
        "--playwright",
        action="store_true",
        help="drive the pages with Playwright (it copies every websocket frame to its driver) instead of "
        "a bare CDP connection",
    )
    p.add_argument(
        "--renice-renderer",
        type=int,
        default=None,
        metavar="N",
        help="experiment: nice value for the widget page's renderer threads (e.g. -10; needs CAP_SYS_NICE)",
    )
    args = p.parse_args()
    if args.quick:
        args.lines, args.baseline_lines, args.baseline_1m_timeout = 100_000, 20_000, 0

    chromium = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:  # not a broken benchmark: nothing to run it in
        print(
            "widget_browser: skipped (needs Debian's chromium and `pip install playwright`; "
            "never `playwright install`; FRW_CHROMIUM=/path picks another browser)"
        )
        return 0
    from importlib.metadata import version

    rec = Record("widget_browser")
    m = machine()
    m["chromium"] = chromium_version(chromium)
    m["jupyterlab"] = version("jupyterlab")
    m["jupyter_server"] = version("jupyter_server")
    RAW.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    tmp = Path(tempfile.mkdtemp(prefix="frw-bench-browser-"))
    results: list[dict[str, Any]] = []
    servers: list[JupyterServer] = []
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        bench = Bench(browser, RAW, stamp, profile=args.profile, trace=args.trace)
        bench.renice = args.renice_renderer
        if not args.playwright:
            bench.raw = chromium
        with Service(tmp / "service") as svc:
            lab_default = JupyterServer(tmp / "lab-default")
            servers.append(lab_default)
            lab_default.start()
            print(f"widget, {args.lines:,} lines …", file=sys.stderr)
            results.append(bench.widget(lab_default, svc.endpoint, args.lines, args.timeout))
            if not args.widget_only:
                print(f"print baseline, {args.baseline_lines:,} lines …", file=sys.stderr)
                results.append(bench.printed(lab_default, args.baseline_lines, args.timeout, "print"))
            lab_default.stop()
            if not args.skip_unlimited and not args.widget_only:
                lab_free = JupyterServer(tmp / "lab-unlimited")
                servers.append(lab_free)
                lift_iopub_limits(lab_free)
                lab_free.start()
                print(
                    f"print baseline, iopub limits lifted, {args.baseline_lines:,} lines …", file=sys.stderr
                )
                results.append(bench.printed(lab_free, args.baseline_lines, args.timeout, "print-unlimited"))
                if args.baseline_1m_timeout > 0:
                    print(
                        f"print baseline, limits lifted, {args.lines:,} lines, ≤ {args.baseline_1m_timeout:.0f} s …",
                        file=sys.stderr,
                    )
                    results.append(
                        bench.printed(lab_free, args.lines, args.baseline_1m_timeout, "print-unlimited")
                    )
                lab_free.stop()
        browser.close()
    finally:
        for s in servers:
            s.stop()
        pw.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(results, m, args)
    path = save("widget_browser", text, {"machine": m, "args": vars(args), "results": results})
    print(text)
    print(f"(saved {path})", file=sys.stderr)
    rec.write(headline(results))
    return 0


if __name__ == "__main__":
    os.environ.pop("ANYWIDGET_HMR", None)
    sys.exit(main())
