"""A run with N child actions (10,000 by default) on the embedded service, followed by the
widget's action tree, beside the flyte SDK's terminal UI approach (ListActions, every page, polled
every 2 s) measured in the same run.

    python bench/action_tree.py                 # 10,000 children
    python bench/action_tree.py --children 2000 --quick --watch-seconds 10

The children are enqueued at once and run at the service's pace (a process each, a few at a time);
after --watch-seconds the run is aborted, which ends every remaining action in one burst.

Figures:
  snapshot        a fresh WatchActions subscription until the client holds every action
                  (client/streams.py follow_actions into notebook/tree.py ActionTree), median of 3,
                  once every child exists; baseline: one ListActions listing of every page
  messages/s      the RunWidget's tree messages (its send, wrapped) in the busiest 1-s window while
                  the tree changes; and bytes/s over that time. Baseline: a widget fed by the
                  poller, one full-tree message set every 2 s (ActionTree.replay of each poll)
  longest task    Chromium (Debian's, via Playwright): the built bundle (flyte_run_widget/static)
                  on a page with a stand-in model, the recorded kernel messages replayed 50 ms
                  apart (faster than the kernel's 250 ms: a harder test), longest `longtask`
                  entry; baseline: the poller's full-tree messages replayed into the same view.
                  A Chromium trace of the same replay says what the longest task held: its wall
                  and thread-CPU milliseconds, and script / style / layout / paint / GC in it
                  (printed, and kept in the result file's extra)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _record import Record, figure
from _service import Service
from flyteidl2.common import list_pb2
from flyteidl2.workflow import run_definition_pb2 as rd
from flyteidl2.workflow import run_service_pb2 as rs

import flyte_run_widget as frw
from flyte_run_widget.client import loop as _loop
from flyte_run_widget.client.rpc import get_client
from flyte_run_widget.client.streams import follow_actions
from flyte_run_widget.notebook.tree import ActionTree

REPO = Path(__file__).resolve().parents[1]
POLL = 2.0
CHROMIUM = "/usr/bin/chromium"


@frw.task
async def leaf(i: int) -> int:
    return i


@frw.task
async def fan(n: int) -> int:
    # Every child is started at once (each task copies the group it was made in), so the whole
    # tree exists, mostly QUEUED, long before the service has run it.
    jobs = []
    for g in range(4):
        with frw.group(f"group-{g}"):
            jobs += [asyncio.ensure_future(leaf(i)) for i in range(g, n, 4)]
    return sum(await asyncio.gather(*jobs))


async def list_all(run_id: Any) -> tuple[list[rd.Action], int]:
    """Every action, page by page, as the SDK's TUI lists them; and the bytes received."""
    out: list[rd.Action] = []
    size, token = 0, ""
    while True:
        req = rs.ListActionsRequest(run_id=run_id, request=list_pb2.ListRequest(limit=100, token=token))
        resp = await get_client().unary("ListActions", req)
        out += resp.actions
        size += resp.ByteSize()
        token = resp.token
        if not token or not resp.actions:
            return out, size


async def snapshot_time(run_id: Any, want: int) -> float:
    tree = ActionTree()
    t0 = time.perf_counter()
    stream = follow_actions(get_client(), run_id)
    try:
        async for batch in stream:
            tree.merge(batch)
            if len(tree.nodes) >= want:
                return time.perf_counter() - t0
    finally:
        await stream.aclose()
    raise RuntimeError(f"the watch ended with {len(tree.nodes)} of {want} actions")


async def poller(run_id: Any, polls: list[dict[str, Any]], stop: threading.Event) -> None:
    while not stop.is_set():
        t = time.monotonic()
        actions, size = await list_all(run_id)
        tree = ActionTree()
        tree.merge(rd.EnrichedAction(action=a) for a in actions)
        polls.append({"t": t, "took": time.monotonic() - t, "bytes": size, "msgs": list(tree.replay())})
        if len(polls) > 40:  # keep memory bounded: every other poll of a long run
            del polls[1:-1:2]
        await asyncio.sleep(max(0.0, POLL - (time.monotonic() - t)))


def busiest(times: list[float], window: float = 1.0) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


PAGE = """async ([code, batches, gap]) => {
  const mod = await import(URL.createObjectURL(new Blob([code], { type: 'text/javascript' })))
  const handlers = new Map()
  const attrs = { run_name: 'bench', phase: 'running', raw_phase: 4, max_lines: 1000, log_attempts: [],
    error: {}, outputs: '', connection: { state: 'connected' }, selected: '', tree_size: 0, now_ms: Date.now() }
  const model = { get: (k) => attrs[k], set: (k, v) => { attrs[k] = v }, send() {}, save_changes() {},
    on: (e, f) => { if (!handlers.has(e)) handlers.set(e, new Set()); handlers.get(e).add(f) },
    off: (e, f) => handlers.get(e)?.delete(f) }
  const el = document.createElement('div'); document.body.append(el)
  mod.default.initialize({ model }); mod.default.render({ model, el })
  // The widget's first layout (styles, fonts) is not the tree's work: settle before observing.
  await new Promise((ok) => requestAnimationFrame(() => setTimeout(ok, 500)))
  let longest = 0
  let handler = 0
  performance.mark('frw-observe')
  new PerformanceObserver((l) => { for (const e of l.getEntries()) longest = Math.max(longest, e.duration) })
    .observe({ type: 'longtask', buffered: false })
  for (const batch of batches) {
    const t = performance.now()
    for (const msg of batch) for (const f of handlers.get('msg:custom') ?? []) f(msg, [])
    handler = Math.max(handler, performance.now() - t)
    await new Promise((ok) => setTimeout(ok, gap))
  }
  await new Promise((ok) => requestAnimationFrame(() => setTimeout(ok, 200)))
  return { longest, handler, rows: el.querySelectorAll('.frw-trow').length }
}"""


#: Trace events inside a main-thread task, by what they are (Chromium's timeline names).
KINDS = {
    "script": ("FunctionCall", "TimerFire", "FireAnimationFrame", "EventDispatch", "EvaluateScript"),
    "style": ("UpdateLayoutTree",),
    "layout": ("Layout",),
    "paint": ("PrePaint", "Paint", "Commit", "Layerize"),
    "gc": ("MinorGC", "MajorGC", "V8.GCScavenger", "V8.GCFinalizeMC"),
}


def attribute(trace: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
    """The longest task of the page's main thread after the observer started: its wall time,
    the thread's CPU time in it (much less than the wall time: the thread waited for a core)
    and the milliseconds of each kind of work inside it."""
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    main = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("name") == "thread_name" and e.get("args", {}).get("name") == "CrRendererMain"
    }
    mine = [e for e in events if (e.get("pid"), e.get("tid")) in main]
    marks = [e["ts"] for e in mine if e.get("name") == "frw-observe"]
    start = min(marks) if marks else 0
    tasks = [e for e in mine if e.get("name") == "RunTask" and e.get("ph") == "X" and e["ts"] >= start]
    if not tasks:
        return {}
    top = max(tasks, key=lambda e: e.get("dur", 0))
    t0, t1 = top["ts"], top["ts"] + top.get("dur", 0)
    inside = [e for e in mine if e.get("ph") == "X" and t0 <= e["ts"] and e["ts"] + e.get("dur", 0) <= t1]
    kinds = {}
    for kind, names in KINDS.items():
        # Outermost events only: a FunctionCall inside a TimerFire is counted once.
        spans = sorted((e["ts"], e["ts"] + e.get("dur", 0)) for e in inside if e["name"] in names)
        total, end = 0, 0
        for a, b in spans:
            if b > end:
                total += b - max(a, end)
                end = b
        kinds[kind] = round(total / 1000, 1)
    return {
        "wall_ms": round(top.get("dur", 0) / 1000, 1),
        "thread_cpu_ms": round(top.get("tdur", 0) / 1000, 1),
        **kinds,
    }


def traced(trace: dict[str, Any]) -> str:
    if not trace:
        return ""
    return (
        f"; traced, the longest task: {trace['wall_ms']:g} ms wall, {trace['thread_cpu_ms']:g} ms of it on the"
        f" main thread's CPU (script {trace['script']:g}, style {trace['style']:g}, layout {trace['layout']:g},"
        f" paint {trace['paint']:g}, GC {trace['gc']:g} ms wall)"
    )


def longest_task(batches: list[list[dict[str, Any]]], gap_ms: float) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    code = (REPO / "flyte_run_widget" / "static" / "widget.js").read_text()
    categories = ["devtools.timeline", "disabled-by-default-devtools.timeline", "blink.user_timing", "v8"]
    with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="frw-bench-trace-") as tmp:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto("about:blank")
        trace = Path(tmp) / "trace.json"
        browser.start_tracing(page=page, path=str(trace), categories=categories)
        result = page.evaluate(PAGE, [code, batches, gap_ms])
        browser.stop_tracing()
        browser.close()
        result["trace"] = attribute(json.loads(trace.read_text()))
    return dict(result)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--children", type=int, default=10_000)
    ap.add_argument("--quick", action="store_true", help="one snapshot measurement instead of 3")
    ap.add_argument("--watch-seconds", type=float, default=30, help="how long children run before the abort")
    args = ap.parse_args()
    rec = Record("action_tree")
    n = args.children
    with tempfile.TemporaryDirectory(prefix="frw-bench-tree-") as tmp, Service(Path(tmp) / "data") as svc:
        frw.init(svc.endpoint, project="bench", domain="development")
        sent: list[tuple[float, int]] = []
        orig_send = frw.RunWidget.send
        recorded: list[dict[str, Any]] = []

        def send(self: Any, content: Any, buffers: Any = None) -> None:
            if isinstance(content, dict) and content.get("type") == "tree":
                sent.append((time.monotonic(), len(json.dumps(content))))
                recorded.append(content)

        frw.RunWidget.send = send  # type: ignore[method-assign]
        t_start = time.monotonic()
        run = frw.run(fan, n=n)
        w = run.widget()
        run_id = run.pb2.action.id.run
        polls: list[dict[str, Any]] = []
        stop = threading.Event()
        poll_job = _loop.submit(poller(run_id, polls, stop))
        while len(w._tree.nodes) < n + 1:
            if run.sync().done() and len(w._tree.nodes) < n + 1:
                raise SystemExit(f"the run ended ({run.phase}) with {len(w._tree.nodes)} actions")
            time.sleep(0.5)
        print(f"{n + 1} actions after {time.monotonic() - t_start:.1f} s", flush=True)
        snaps = [_loop.run_sync(snapshot_time(run_id, n + 1)) for _ in range(1 if args.quick else 3)]
        lists = []
        for _ in range(1 if args.quick else 3):
            t = time.perf_counter()
            _loop.run_sync(list_all(run_id))
            lists.append(time.perf_counter() - t)
        # Children run and end at the service's pace for a while; then AbortRun ends every
        # action still queued or running at once: the largest burst of changes the tree sees.
        time.sleep(args.watch_seconds)
        run.abort(reason="benchmark over")
        while not (run.sync().done() and w._tree_done):
            time.sleep(0.5)
        while w._tree.pending() or not w._flusher_job.done():
            time.sleep(0.25)
        stop.set()
        poll_job.result(timeout=60)
        took = time.monotonic() - t_start
        print(
            f"run {run.phase} after {took:.1f} s; {len(sent)} tree messages, {len(polls)} polls kept",
            flush=True,
        )
        w.close()
        frw.RunWidget.send = orig_send  # type: ignore[method-assign]

    times = [t for t, _ in sent]
    span = max(times[-1] - times[0], 1e-9)
    peak = busiest(times)
    widget_bytes = sum(b for _, b in sent) / span
    poll_bytes = (
        statistics.mean(len(json.dumps(m)) for p in polls for m in p["msgs"])
        * (sum(len(p["msgs"]) for p in polls) / len(polls))
        / POLL
    )
    poll_rate = statistics.mean(len(p["msgs"]) for p in polls) / POLL
    watch = longest_task([[m] for m in recorded], 50)
    polled = longest_task([p["msgs"] for p in polls], 50)
    print(json.dumps({"snapshot": snaps, "list": lists, "peak": peak, "watch": watch, "polled": polled}))
    snap, listed = statistics.median(snaps), statistics.median(lists)
    figures = [
        figure(
            f"{n:,} child actions: WatchActions snapshot to the client",
            snap,
            "s",
            baseline="ListActions, every page (the SDK's TUI poll)",
            baseline_value=listed,
            target=("<=", 1.0, "value"),
        ),
        figure(
            f"{n:,} child actions: kernel → browser tree messages, busiest 1-s window while changing",
            float(peak),
            "/s",
            baseline="full tree every 2 s (ListActions poll)",
            baseline_value=poll_rate,
            target=("<=", 4.0, "value"),
        ),
        figure(
            f"{n:,} child actions: kernel → browser tree bytes/s while changing",
            widget_bytes,
            "B/s",
            baseline="full tree every 2 s (ListActions poll)",
            baseline_value=poll_bytes,
        ),
        figure(
            f"{n:,} child actions: longest main-thread task in Chromium while the tree updates",
            float(watch["longest"]),
            "ms",
            baseline="full tree every 2 s into the same view",
            baseline_value=float(polled["longest"]),
            target=("<=", 50.0, "value"),
            note="longtask entries exist only for tasks >= 50 ms: 0 means none"
            + traced(watch.get("trace", {})),
        ),
    ]
    extra = {"children": n, "run_seconds": round(took, 1), "longest_task_trace": watch.get("trace", {})}
    print(rec.write(figures, extra))


if __name__ == "__main__":
    main()
