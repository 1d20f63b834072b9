"""Chrome traces of a page's main thread and CDP CPU profiles, summarised for
bench/widget_browser.py (`--trace`, `--profile`).
"""

from __future__ import annotations

import bisect
from typing import Any

TRACE_CATEGORIES = [
    "toplevel",
    "devtools.timeline",
    "disabled-by-default-devtools.timeline",
    "v8",
    "v8.execute",
    "disabled-by-default-v8.gc",
    "blink.user_timing",
    "disabled-by-default-v8.cpu_profiler",
]
TOP_TASKS = {"ThreadControllerImpl::RunTask", "RunTask"}


def _label(e: dict[str, Any]) -> str:
    data = (e.get("args") or {}).get("data") or {}
    name = e["name"]
    if name == "FunctionCall":
        url = str(data.get("url", "")).rsplit("/", 1)[-1].split("?")[0][:40]
        return f"FunctionCall {data.get('functionName') or '(anonymous)'} {url}:{data.get('lineNumber', '')}"
    if name == "EventDispatch":
        return f"EventDispatch {data.get('type', '?')}"
    return name


def trace_main_thread(
    trace: Any, window: tuple[float, float] | None = None, threshold_ms: float = 50, n: int = 12
) -> dict[str, Any]:
    """The page's main thread in a Chrome trace: every task's wall time and thread CPU time, and
    for each task ≥ threshold what it spent its time on (trace events by self time, GC among them)
    and which JS functions the trace's CPU profile sampled in it. Tasks that start the profiler
    (trace overhead) are left out."""
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e.get("name") == "thread_name"}
    count: dict[Any, int] = {}
    for e in events:
        k = (e.get("pid"), e.get("tid"))
        if names.get(k) == "CrRendererMain":
            count[k] = count.get(k, 0) + 1
    if not count:
        return {}
    main = max(count, key=lambda k: count[k])  # the page's renderer: the busiest main thread
    spans: list[tuple[float, float, dict[str, Any]]] = []  # (start µs, end µs, event)
    begun: list[dict[str, Any]] = []
    for e in sorted(
        (e for e in events if (e.get("pid"), e.get("tid")) == main), key=lambda e: e.get("ts", 0)
    ):
        if e.get("ph") == "X":
            spans.append((e["ts"], e["ts"] + e.get("dur", 0), e))
        elif e.get("ph") == "B":
            begun.append(e)
        elif e.get("ph") == "E" and begun:
            b = begun.pop()
            spans.append((b["ts"], e["ts"], b))
    spans.sort(key=lambda s: (s[0], -s[1]))
    samples, nodes = _trace_samples(events, main[0])
    tasks: list[tuple[float, float, dict[str, Any]]] = []
    for sp in spans:  # outermost task events only (RunTask nests in ThreadControllerImpl::RunTask)
        if sp[2]["name"] in TOP_TASKS and not (tasks and sp[1] <= tasks[-1][1]):
            tasks.append(sp)
    skip = [s0 for s0, _, e in spans if e["name"] == "CpuProfiler::StartProfiling"]
    tasks = [t for t in tasks if not any(t[0] <= x <= t[1] for x in skip)]
    if window:  # tasks that start in the window (µs, the trace's clock)
        tasks = [t for t in tasks if window[0] <= t[0] <= window[1]]
    long_ = []
    t_first = window[0] if window else tasks[0][0] if tasks else 0
    for start, end, top in tasks:
        if end - start < threshold_ms * 1000:
            continue
        inner = [sp for sp in spans if start <= sp[0] and sp[1] <= end and sp[2]["name"] not in TOP_TASKS]
        self_us: dict[str, float] = {}
        stack: list[list[Any]] = []  # [end, label, own µs]
        for s0, s1, e in inner:
            while stack and stack[-1][0] <= s0:
                done = stack.pop()
                self_us[done[1]] = self_us.get(done[1], 0.0) + done[2]
            if stack:
                stack[-1][2] -= s1 - s0
            stack.append([s1, _label(e), s1 - s0])
        for done in stack:
            self_us[done[1]] = self_us.get(done[1], 0.0) + done[2]
        self_us["(task, no event)"] = (end - start) - sum(self_us.values())
        js: dict[str, float] = {}
        lo = bisect.bisect_left(samples, (start, -1))
        hi = bisect.bisect_right(samples, (end, 1 << 60))
        for k in range(lo, hi):
            dt_us = (samples[k + 1][0] - samples[k][0]) if k + 1 < len(samples) else 0
            js[nodes.get(samples[k][1], "?")] = js.get(nodes.get(samples[k][1], "?"), 0.0) + dt_us
        long_.append(
            {
                "at_s": (start - t_first) / 1e6,
                "dur_ms": (end - start) / 1000,
                "cpu_ms": top["tdur"] / 1000 if "tdur" in top else None,
                "events": [(k, v / 1000) for k, v in sorted(self_us.items(), key=lambda kv: -kv[1])[:n]],
                "js": [(k, v / 1000) for k, v in sorted(js.items(), key=lambda kv: -kv[1])[:n]],
            }
        )
    cpu = [t[2].get("tdur", 0) / 1000 for t in tasks]
    return {
        "tasks": len(tasks),
        "wall_ms": sum((t[1] - t[0]) / 1000 for t in tasks),
        "cpu_ms": sum(cpu),
        "span_s": (tasks[-1][1] - tasks[0][0]) / 1e6 if tasks else 0.0,
        "max_cpu_ms": max(cpu, default=0.0),
        "cpu_over_threshold": sum(c >= threshold_ms for c in cpu),
        "long": long_,
    }


def _trace_samples(events: list[dict[str, Any]], pid: int) -> tuple[list[tuple[float, int]], dict[int, str]]:
    """The CPU profile samples (ProfileChunk events) of one process: (time µs, node id), node names."""
    nodes: dict[int, str] = {}
    samples: list[tuple[float, int]] = []
    t = None
    for e in sorted(events, key=lambda e: e.get("ts", 0)):
        if e.get("pid") != pid:
            continue
        data = (e.get("args") or {}).get("data") or {}
        if e.get("name") == "Profile":
            t = float(data.get("startTime", e["ts"]))
        elif e.get("name") == "ProfileChunk" and t is not None:
            cp = data.get("cpuProfile") or {}
            for node in cp.get("nodes") or []:
                cf = node.get("callFrame") or {}
                url = str(cf.get("url", "")).rsplit("/", 1)[-1].split("?")[0][:40]
                nodes[node["id"]] = (
                    f"{cf.get('functionName') or '(anonymous)'} {url}:{cf.get('lineNumber', -1) + 1}"
                )
            for sid, dt_us in zip(cp.get("samples") or [], data.get("timeDeltas") or [], strict=False):
                t += dt_us
                samples.append((t, sid))
    samples.sort()
    return samples, nodes


def cpu_profile_top(profile: dict[str, Any], n: int = 20) -> list[dict[str, Any]]:
    """Self time by function from a CDP Profiler profile, the largest first."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    deltas = profile.get("timeDeltas") or []
    self_us: dict[int, float] = {}
    for sample, delta in zip(profile.get("samples") or [], [*deltas[1:], 0], strict=False):
        self_us[sample] = self_us.get(sample, 0.0) + delta
    total = sum(self_us.values()) or 1.0
    by_fn: dict[str, float] = {}
    for node_id, us in self_us.items():
        cf = nodes[node_id]["callFrame"]
        url = cf.get("url", "").rsplit("/", 1)[-1][:40]
        key = f"{cf.get('functionName') or '(anonymous)'} {url}:{cf.get('lineNumber', -1) + 1}"
        by_fn[key] = by_fn.get(key, 0.0) + us
    top = sorted(by_fn.items(), key=lambda kv: -kv[1])[:n]
    return [{"function": k, "self_ms": v / 1000, "share": v / total} for k, v in top]
