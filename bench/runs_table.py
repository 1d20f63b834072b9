"""10,000 runs in the runs table (`frw.runs`) in a real Chromium in JupyterLab: first paint and the
cost of live updates, beside the same runs printed as text from `Run.listall` in a plain cell.

    python bench/runs_table.py                 # 10,000 runs, 200 new runs during the update phase
    python bench/runs_table.py --quick         # 1,000 runs, 50 new runs
    python bench/runs_table.py --runs N --new M

Set-up: the service in a subprocess (bench/_service.py) with N finished runs of a container task
`true` (created as bench/service_scale.py does). One JupyterLab server, one Chromium driven by
Playwright (tests/browser/conftest.py); each scenario in a fresh page, notebook and kernel.

Scenarios and figures (browser and kernel share the machine clock):

  text    a cell `for r in frw.Run.listall(limit=N, sort_by=("created_at", "desc")): print(name,
          task, phase, start)`, then `print("END")`. first paint: from run-all to the first frame
          with a printed run in the output; complete: to the first frame with END in it.
  table   a cell `frw.runs(limit=N)`. first paint: run-all to the first frame with table rows in
          the DOM; complete: to the first frame whose count reads N runs. Rows in the DOM then.
  both    main-thread time of the page in that window by kind (CDP Performance.getMetrics:
          script, layout, style recalculation, all tasks), the longest task.
  update  with the table showing N runs, M new runs are created (each queued → running →
          succeeded, so ~3 changes each; every new run pushes the oldest out): the time from the
          first CreateRun until every new run shows SUCCEEDED, the `rows` messages the page
          received (websocket frames), the longest gap between animation frames and the long
          tasks (>= 50 ms, PerformanceObserver) in that window.

Both also report the longest frame gap and the JS heap at the end. Results: a markdown table on
stdout and in bench/results/raw/ with a JSON copy; screenshots there too. Not a test: it never
fails on a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from _lab import CHROMIUM_ARGS, JupyterServer, Lab, _chromium, code_cell, setup_cell
from _service import RAW, Service, machine, machine_line, save
from service_scale import PROJECT, count_runs, create_runs

# Installed before page scripts: long tasks, and a per-frame probe the bench arms per scenario.
INIT_SCRIPT = """
(() => {
  const b = (window.__rt = { long: [], armed: false })
  try {
    new PerformanceObserver((l) => { for (const e of l.getEntries()) b.long.push([performance.timeOrigin + e.startTime, e.duration]) })
      .observe({ type: 'longtask', buffered: true })
  } catch (e) { b.longError = String(e) }
  let prev = performance.now()
  const tick = () => {
    const now = performance.now()
    if (b.armed) {
      const gap = now - prev
      if (gap > b.maxGap) b.maxGap = gap
      const t = Date.now()
      if (b.kind === 'text') {
        const out = document.querySelector('.jp-OutputArea-output')
        const text = out ? out.textContent : ''
        if (b.first === null && text.includes(b.marker)) b.first = t
        if (b.done === null && text.includes('END')) b.done = t
      } else {
        const rows = document.querySelectorAll('.frwt .frwt-row')
        if (b.first === null && rows.length) b.first = t
        const count = document.querySelector('.frwt .frwt-count')
        if (b.done === null && count && count.textContent === b.want) { b.done = t; b.domRows = rows.length }
      }
    }
    prev = now
    requestAnimationFrame(tick)
  }
  requestAnimationFrame(tick)
})()
"""

ARM = """({ kind, marker, want }) => {
  const b = window.__rt
  Object.assign(b, { kind, marker, want, first: null, done: null, maxGap: 0, t0: Date.now(), armed: true })
  return b.t0
}"""

STATE = """() => {
  const b = window.__rt
  return { first: b.first, done: b.done, t0: b.t0, maxGap: b.maxGap, domRows: b.domRows ?? null,
    heap: performance.memory ? performance.memory.usedJSHeapSize / 1048576 : null }
}"""

WINDOW = """([t0, t1]) => {
  const b = window.__rt
  const long = b.long.filter(([at]) => at >= t0 && at <= t1).map(([, d]) => d)
  return { longest: Math.max(0, ...long), long_total: long.reduce((a, d) => a + d, 0), long_count: long.length,
    maxGap: b.maxGap }
}"""

PHASES = """() => Object.fromEntries([...document.querySelectorAll('.frwt .frwt-row')].map(
  (r) => [r.dataset.name, r.querySelector('.frw-badge').dataset.phase]))"""


_METRICS = ("ScriptDuration", "LayoutDuration", "RecalcStyleDuration", "TaskDuration")


def _metrics(cdp: Any) -> dict[str, float]:
    """The page's main-thread time so far by kind, in seconds (CDP Performance.getMetrics)."""
    got = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {k: float(got.get(k, 0.0)) for k in _METRICS}


def _spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {f"{k.removesuffix('Duration').lower()}_ms": (after[k] - before[k]) * 1000 for k in _METRICS}


def _open(lab: Lab, name: str, source: str, endpoint: str) -> None:
    nb = lab.write_notebook(name, [code_cell(setup_cell(endpoint) + source)])
    lab.open(nb)


def _measure(lab: Lab, cdp: Any, kind: str, marker: str, want: str, timeout: float) -> dict[str, Any]:
    before = _metrics(cdp)
    t0 = lab.page.evaluate(ARM, {"kind": kind, "marker": marker, "want": want})
    lab.run_all()
    state = lab.wait_for(
        lambda: (s := lab.page.evaluate(STATE))["done"] and s, f"the {kind} scenario to complete", timeout
    )
    window = lab.page.evaluate(WINDOW, [t0, state["done"]])
    return {
        **_spent(before, _metrics(cdp)),
        "first_paint_s": (state["first"] - t0) / 1000,
        "complete_s": (state["done"] - t0) / 1000,
        "longest_task_ms": window["longest"],
        "long_tasks_ms": window["long_total"],
        "max_frame_gap_ms": state["maxGap"],
        "dom_rows": state["domRows"],
        "heap_mb": state["heap"],
    }


def _new_context(browser: Any) -> tuple[Any, Any, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(INIT_SCRIPT)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    return context, page, cdp


def run_bench(n: int, new: int, endpoint: str, server: JupyterServer, browser: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # Text: Run.listall printed.
    context, page, cdp = _new_context(browser)
    lab = Lab(server, page, "bench-runs-text")
    try:
        src = (
            f"for r in frw.Run.listall(limit={n}, sort_by=('created_at', 'desc')):\n"
            "    print(r.name, r.task_name, r.phase, r.pb2.action.status.start_time.ToJsonString())\n"
            "print('END')\n"
        )
        _open(lab, "bench_text", src, endpoint)
        out["text"] = _measure(lab, cdp, "text", " succeeded ", "", timeout=600)
        lab.screenshot("text")
    finally:
        context.close()
        server.shutdown_kernels()

    # Table: first paint, then updates.
    context, page, cdp = _new_context(browser)
    frames = {"rows": 0, "bytes": 0}

    def on_ws(ws: Any) -> None:
        def frame(payload: Any) -> None:
            data = payload if isinstance(payload, bytes) else str(payload).encode()
            if b'"names"' in data and b'"rows"' in data:
                frames["rows"] += 1
                frames["bytes"] += len(data)

        ws.on("framereceived", frame)

    page.on("websocket", on_ws)
    lab = Lab(server, page, "bench-runs-table")
    try:
        _open(lab, "bench_table", f"frw.runs(limit={n})\n", endpoint)
        out["table"] = _measure(lab, cdp, "table", "", f"{n:,} runs", timeout=600)
        out["table"]["rows_messages"], out["table"]["rows_bytes"] = frames["rows"], frames["bytes"]
        lab.screenshot("table")

        frames.update(rows=0, bytes=0)
        page.evaluate("() => { window.__rt.maxGap = 0 }")
        before = _metrics(cdp)
        t0 = time.time() * 1000
        names = _create_named(endpoint, new)
        done = lab.wait_for(
            lambda: all(p == "succeeded" for p in _phases_of(lab, names)) and time.time() * 1000,
            "every new run to show SUCCEEDED",
            600,
            interval=0.2,
        )
        window = lab.page.evaluate(WINDOW, [t0, done])
        out["update"] = {
            **_spent(before, _metrics(cdp)),
            "new_runs": new,
            "all_shown_s": (done - t0) / 1000,
            "rows_messages": frames["rows"],
            "rows_bytes": frames["bytes"],
            "messages_per_s": frames["rows"] / max((done - t0) / 1000, 1e-9),
            "longest_task_ms": window["longest"],
            "long_tasks_ms": window["long_total"],
            "max_frame_gap_ms": window["maxGap"],
            "count_text": lab.page.inner_text(".frwt .frwt-count"),
        }
        lab.screenshot("updated")
    finally:
        context.close()
        server.shutdown_kernels()
    return out


def _phases_of(lab: Lab, names: list[str]) -> list[str]:
    # The new runs are the newest: the table's default order puts them on top, in the viewport.
    shown = lab.page.evaluate(PHASES)
    return [shown.get(n, "") for n in names]


def _create_named(endpoint: str, n: int) -> list[str]:
    import grpc
    from flyteidl2.common import identifier_pb2 as ids
    from flyteidl2.workflow import run_service_pb2 as rs
    from flyteidl2.workflow import run_service_pb2_grpc as rs_grpc

    from tests.conftest import container_task

    request = rs.CreateRunRequest(
        task_spec=container_task(["true"], name="bench.true"),
        project_id=ids.ProjectIdentifier(name=PROJECT, domain="development"),
    )
    # A sync channel: Playwright's sync API keeps an event loop running on this thread.
    with grpc.insecure_channel(endpoint) as channel:
        stub = rs_grpc.RunServiceStub(channel)
        names = []
        for _ in range(n):  # one after another: each is newer than the last, as a user's would be
            names.append(stub.CreateRun(request, timeout=60).run.action.id.run.name)
    return names[-10:]  # the newest: all in the viewport at once


def _line(label: str, r: dict[str, Any]) -> str:
    return (
        f"| {label} | {r['first_paint_s']:.2f} s | {r['complete_s']:.2f} s | {r['script_ms']:.0f} / "
        f"{r['layout_ms']:.0f} / {r['recalcstyle_ms']:.0f} ms | {r['longest_task_ms']:.0f} ms | "
        f"{r['max_frame_gap_ms']:.0f} ms | {r['dom_rows'] if r['dom_rows'] is not None else '–'} | "
        f"{r['heap_mb'] or 0:.0f} MB |"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--new", type=int, default=200)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n, new = (1_000, 50) if args.quick else (args.runs, args.new)
    chromium = _chromium()
    if chromium is None:
        print("no chromium: skipped")
        return 0
    from playwright import sync_api

    m = machine()
    with tempfile.TemporaryDirectory() as tmp, Service(Path(tmp) / "data") as svc:
        import grpc
        from flyteidl2.workflow import run_service_pb2_grpc as rs_grpc

        took = asyncio.run(create_runs(svc.endpoint, n, 32))
        stub = rs_grpc.RunServiceStub(grpc.insecure_channel(svc.endpoint))
        while (counts := count_runs(stub))[1]:
            time.sleep(1)
        print(f"{counts[0]:,} runs created in {took:.0f} s", file=sys.stderr)
        server = JupyterServer(Path(tmp) / "jupyter")
        server.start()
        pw = sync_api.sync_playwright().start()
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            results = run_bench(n, new, svc.endpoint, server, browser)
        finally:
            browser.close()
            pw.stop()
            server.stop()
    t, tb, u = results["text"], results["table"], results["update"]
    text = "\n".join(
        [
            f"# runs table: {n:,} runs; {machine_line(m)}",
            "",
            "| | first paint | complete | main thread: script / layout / style | longest task | max frame gap "
            "| DOM rows | JS heap |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            _line("Run.listall printed", t),
            _line("frw.runs table", tb),
            "",
            f"Table first load: {tb['rows_messages']} rows messages, {tb['rows_bytes'] / 1024:.0f} KiB.",
            f"Update: {u['new_runs']} new runs (queued → running → succeeded) while {n:,} shown: every one "
            f"SUCCEEDED in the table {u['all_shown_s']:.1f} s after the first CreateRun; "
            f"{u['rows_messages']} rows messages ({u['messages_per_s']:.1f}/s, {u['rows_bytes'] / 1024:.0f} KiB); "
            f"main thread: script {u['script_ms']:.0f} ms, layout {u['layout_ms']:.0f} ms, style "
            f"{u['recalcstyle_ms']:.0f} ms (all tasks {u['task_ms']:.0f} ms); "
            f"longest task {u['longest_task_ms']:.0f} ms, long tasks {u['long_tasks_ms']:.0f} ms in all, "
            f"max frame gap {u['max_frame_gap_ms']:.0f} ms; count then: {u['count_text']}.",
        ]
    )
    print(text)
    path = save("runs_table", text + "\n", {"machine": m, "runs": n, **results})
    print(f"\nsaved: {path} (screenshots: {RAW.parent.parent.parent / 'test-artifacts'})", file=sys.stderr)
    print(json.dumps(results), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
