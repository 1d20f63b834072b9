"""bench/widget_browser.py's report (a markdown table and notes) and its headline figures for
bench/results/widget_browser.json."""

from __future__ import annotations

import argparse
import os
from typing import Any

from _record import figure


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
