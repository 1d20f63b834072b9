"""bench/widget_browser.py's scenarios, each in a fresh page, notebook and kernel: the widget
showing a task's lines, and the same lines printed into a plain cell output."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from _cdp import RawContext, heap_mb
from _chrome_trace import TRACE_CATEGORIES, cpu_profile_top, trace_main_thread
from _lab import JupyterServer, Lab, code_cell, setup_cell
from _proc_cpu import cpu_snapshot, cpu_split, renice_renderers
from _service import RAW
from _widget_browser_page import (
    INIT_SCRIPT,
    KERNEL_EXEC,
    MONITOR,
    PRINT_CELL,
    PRINT_DOM,
    TAIL,
    VIEW_STATE,
    WIDGET_CELL,
    WIDGET_RUN_CELL,
    WIDGET_STATS,
)


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
