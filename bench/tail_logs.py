"""TailLogs throughput: N log lines (1,000,000 by default) from the embedded service into the client.

    python bench/tail_logs.py                 # 1M lines, 3 rounds of every variant
    python bench/tail_logs.py --quick         # 100k lines, 2 rounds, no sdk-raw
    python bench/tail_logs.py --lines 300000 --rounds 1 --variants a,c

Set-up: the embedded service on a temp data dir, one task printing N lines, waited for. Then
each variant streams that finished attempt's log in its own subprocess (so peak RSS does not
mix), rounds interleaved (a b c d a b c d ...) so machine noise hits every variant alike:

  a   bare grpc.aio RunLogsServiceStub iterating TailLogs, counting lines (the protocol floor)
  a+  as (a), but reading every line's message, originator and timestamp (the protobuf floor)
  b   flyte_run_widget.client.streams.follow_logs over client.get_client(), counting lines
  c   (b) + what the widget's kernel side does with every batch: logs.to_columns, then split into
      messages (notebook/batches.chunks: <= 5,000 lines / 512 KB) and remote/log_lines.encode_batch (binary columns)
  d   Run.show_logs(raw=True) with stdout going to /dev/null
  sdk the public flyte SDK's own log viewer (Run.show_logs() as a notebook with ipywidgets
      gets it: rich Live re-rendering the last 30 lines per line) fed the same lines: the
      baseline of issue #4 (bench/_sdk_viewer.py, run with .venv-sdk or $FRW_SDK_PYTHON)
  sdk-raw  the SDK's Run.show_logs(raw=True): one rich console.print per line
  live  a new run, tailed with (c) while the task prints: first-to-last-line time against the
        task's own run time, and how far the tail lags behind the service

Correctness in every variant: count == N user lines + the service's system lines, and a
sample of lines (first, middle, last and 5 random per batch) sits exactly where its number
says. Output: a markdown table on stdout and in bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from _record import Record, figure
from _service import REPO, Service, machine, machine_line, repo_env, save
from _tail_variants import DOMAIN, PROJECT, attempt_seconds, task_spec, worker

VARIANTS = {
    "a": "bare grpc.aio stub, count lines (baseline)",
    "a+": "bare stub, read every line's fields",
    "b": "follow_logs over get_client()",
    "c": "follow_logs + to_columns + encode_batch (widget batches)",
    "d": "run.show_logs(raw=True) to /dev/null",
    "sdk": "flyte SDK log viewer, Run.show_logs() (issue #4 baseline)",
    "sdk-raw": "flyte SDK Run.show_logs(raw=True)",
}
SDK_PYTHON = os.environ.get("FRW_SDK_PYTHON") or str(
    Path(__file__).resolve().parents[1] / ".venv-sdk/bin/python"
)


# -- the orchestrator ---------------------------------------------------------------------------


def spawn(
    variant: str, endpoint: str, run: str, lines: int, service_pid: int, tmp: Path, profile: str | None
) -> dict:
    out = tmp / f"result-{variant}-{time.monotonic_ns()}.json"
    cmd = [sys.executable, __file__, "--worker", variant, "--endpoint", endpoint, "--run", run]
    cmd += ["--lines", str(lines), "--service-pid", str(service_pid), "--out", str(out)]
    if variant.startswith("sdk"):
        script = str(Path(__file__).with_name("_sdk_viewer.py"))
        cmd = [SDK_PYTHON, script, endpoint, PROJECT, DOMAIN, run, str(lines), str(service_pid), str(out)]
        cmd += ["raw"] if variant == "sdk-raw" else []
    svc_spy = None
    if profile:
        # Collapsed stacks ("raw"); bench/pyspy_top.py summarises them, flamegraph.pl draws them.
        Path(profile).mkdir(parents=True, exist_ok=True)
        tag = variant.replace("+", "plus")
        spy = ["py-spy", "record", "--threads", "-r", "250", "--format", "raw"]
        cmd = [*spy, "-o", str(Path(profile) / f"client-{tag}.txt"), "--", *cmd]
        svc_spy = subprocess.Popen(
            [*spy, "--pid", str(service_pid), "-o", str(Path(profile) / f"service-{tag}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        proc = subprocess.run(cmd, env=repo_env(), capture_output=True, text=True, timeout=900)
    finally:
        if svc_spy is not None:
            svc_spy.send_signal(signal.SIGINT)
            svc_spy.wait(60)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"variant {variant} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return json.loads(out.read_text())


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def report(
    args: argparse.Namespace, mach: dict, setup: dict, results: dict[str, list[dict]], live: list[dict]
) -> str:
    base = statistics.median(r["lines_per_s"] for r in results["a"]) if results.get("a") else None
    sdk = results.get("sdk") or None
    sdk_rate = statistics.median(r["lines_per_s"] for r in sdk) if sdk else None
    sdk_cpu = statistics.median(r["cpu_s"] / r["count"] for r in sdk) if sdk else None
    out = [
        f"### TailLogs, {args.lines:,} lines, {args.rounds} round(s) per variant",
        "",
        f"Machine: {machine_line(mach)}",
        "",
        f"Set-up: task printing {args.lines:,} lines of 65 bytes ran {setup['task_s']:.2f} s untailed "
        f"({args.lines / setup['task_s']:,.0f} lines/s into the service); log file "
        f"{setup['log_mb']:.1f} MB.",
        "",
        "Median over rounds (lines/s range in brackets). Ratio = lines/s against (a) in this run; "
        "× SDK = lines/s against the flyte SDK's log viewer (sdk) in this run, and in brackets its "
        "client CPU per line over this variant's. "
        "CPU = user+sys seconds of the consuming process (all threads) and of the service during "
        "the stream; on a shared machine CPU per line is steadier than wall time.",
        "",
        "| variant | lines | seconds | lines/s | ratio to (a) | × SDK viewer (CPU) | peak RSS MB (before stream) | client CPU s (µs/line) | service CPU s (µs/line) | correct |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for v, rs in results.items():
        if not rs:
            continue
        med = statistics.median(r["lines_per_s"] for r in rs)
        rng = f"{fmt_rate(min(r['lines_per_s'] for r in rs))}–{fmt_rate(max(r['lines_per_s'] for r in rs))}"
        ratio = f"{med / base:.2f}×" if base else "–"
        ccpu_line = statistics.median(r["cpu_s"] / r["count"] for r in rs)
        vs_sdk = f"{med / sdk_rate:.1f}× ({sdk_cpu / ccpu_line:.1f}×)" if sdk_rate and sdk_cpu else "–"
        secs = statistics.median(r["seconds"] for r in rs)
        peak = max(r["peak_rss_mb"] for r in rs)
        before = statistics.median(r["rss_before_mb"] for r in rs)
        ccpu = statistics.median(r["cpu_s"] for r in rs)
        scpu = statistics.median(r["service_cpu_s"] for r in rs)
        errs = [e for r in rs for e in r["errors"]]
        counts = sorted({r["count"] for r in rs})
        ok = "ok" if not errs else "FAIL: " + "; ".join(errs[:2])
        ok += f" ({'/'.join(map(str, counts))} = {args.lines:,} + {rs[0]['system_lines']} system)"
        out.append(
            f"| ({v}) {VARIANTS[v]} | {rs[0]['count']:,} | {secs:.2f} | {fmt_rate(med)} ({rng}) | {ratio} | {vs_sdk} "
            f"| {peak:.0f} ({before:.0f}) | {ccpu:.2f} ({ccpu / rs[0]['count'] * 1e6:.2f}) "
            f"| {scpu:.2f} ({scpu / rs[0]['count'] * 1e6:.2f}) | {ok} |"
        )
    if live:
        out += [
            "",
            "Live: a new run tailed with (c) while its task prints. task = the attempt's run time in the "
            "service; first→last = first to last line received by the client; end lag = last line "
            "received minus its service timestamp.",
            "",
            "| round | task s (untailed: {:.2f}) | first→last s | lines/s | create→first line s | end lag s | max lag s | peak RSS MB | client CPU s | service CPU s | correct |".format(
                setup["task_s"]
            ),
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for i, r in enumerate(live, 1):
            ok = "ok" if not r["errors"] else "FAIL: " + "; ".join(r["errors"][:2])
            task_s = f"{r['task_s']:.2f}" if r.get("task_s") else "?"
            out.append(
                f"| {i} | {task_s} | {r['seconds']:.2f} | {fmt_rate(r['lines_per_s'])} | {r['create_to_first_s']:.2f} "
                f"| {r.get('end_lag_s', float('nan')):.3f} | {r.get('max_lag_s') or 0:.2f} | {r['peak_rss_mb']:.0f} "
                f"| {r['cpu_s']:.2f} | {r['service_cpu_s']:.2f} | {ok} ({r['count']:,}) |"
            )
    out.append(f"\nService peak RSS over the whole benchmark: {setup['service_peak_rss_mb']:.0f} MB.")
    return "\n".join(out) + "\n"


SDK_NOTE = (
    "Not the same work: the flyte SDK's viewer formats every line with rich and re-renders its last "
    "30 lines into a terminal view for each one; (c) turns batches into the widget's binary messages "
    "and renders nothing (the browser does). It is issue #4's baseline for log following in a "
    "notebook, not a like-for-like comparison."
)


def headline(results: dict[str, list[dict]]) -> list[dict]:
    """The summary's rows: the widget's kernel path (c) against the bare stub and the SDK viewer."""

    def rate(v: str) -> float | None:
        rs = results.get(v)
        return statistics.median(r["lines_per_s"] for r in rs) if rs else None

    def us_per_line(v: str) -> float | None:
        rs = results.get(v)
        return statistics.median(r["cpu_s"] / r["count"] * 1e6 for r in rs) if rs else None

    c, a, sdk = rate("c"), rate("a"), rate("sdk")
    if c is None:
        return []
    out = [
        figure(
            "TailLogs → widget batches (c), median",
            c,
            "lines/s",
            baseline="bare grpc stub (a)" if a else None,
            baseline_value=a,
            target=(">=", 500_000, "value"),
        ),
        figure(
            "(c) client CPU per line",
            us_per_line("c"),
            "µs/line",
            baseline="bare grpc stub (a)" if a else None,
            baseline_value=us_per_line("a"),
        ),
    ]
    if sdk:
        out.append(
            figure(
                "(c) against the flyte SDK's log viewer",
                c,
                "lines/s",
                baseline="SDK viewer (sdk)",
                baseline_value=sdk,
                target=(">=", 50, "ratio"),
                note=SDK_NOTE,
            )
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--quick", action="store_true", help="100,000 lines, 2 rounds, 1 live round")
    p.add_argument("--rounds", type=int, default=None, help="rounds of every variant (default 3, quick 2)")
    p.add_argument("--live-rounds", type=int, default=None, help="live rounds (default 2, quick 1)")
    p.add_argument("--variants", default=None, help="default: all; quick: all but sdk-raw (~30 s)")
    p.add_argument("--sdk-rounds", type=int, default=1, help="rounds of the sdk variants (~4 min per 1M)")
    p.add_argument("--profile", metavar="DIR", help="run each client variant under py-spy record")
    # worker mode (internal)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--endpoint", help=argparse.SUPPRESS)
    p.add_argument("--run", help=argparse.SUPPRESS)
    p.add_argument("--service-pid", type=int, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    rec = Record("tail_logs")
    if args.quick:
        args.lines = 100_000 if args.lines == 1_000_000 else args.lines
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.live_rounds = args.live_rounds if args.live_rounds is not None else (1 if args.quick else 2)
    if args.variants is None:
        args.variants = "a,a+,b,c,d,sdk,live" if args.quick else "a,a+,b,c,d,sdk,sdk-raw,live"
    wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
    if any(v.startswith("sdk") for v in wanted) and not Path(SDK_PYTHON).exists():
        print(
            f"no flyte SDK environment at {SDK_PYTHON} (see scripts/test): sdk variants skipped",
            file=sys.stderr,
        )
        wanted = [v for v in wanted if not v.startswith("sdk")]
    mach = machine()

    import flyte_run_widget as frw

    with tempfile.TemporaryDirectory(prefix="frw-bench-") as tmpname:
        tmp = Path(tmpname)
        with Service(tmp / "data") as svc:
            frw.init(svc.endpoint, project=PROJECT, domain=DOMAIN)
            print(
                f"service {svc.endpoint} (pid {svc.pid}); printing {args.lines:,} lines ...", file=sys.stderr
            )
            run = frw.run(task_spec(args.lines))
            run.wait(quiet=True)
            if run.phase != "succeeded":
                raise SystemExit(f"set-up task ended {run.phase}")
            details = run.details()
            task_s = attempt_seconds(details.action_details.pb2)
            log_mb = sum(f.stat().st_size for f in (tmp / "data" / "runs").rglob("attempt-*.log")) / 1e6
            setup = {"run": run.name, "task_s": task_s, "log_mb": log_mb}
            print(f"task done in {task_s:.2f} s; run {run.name}", file=sys.stderr)
            results: dict[str, list[dict]] = {v: [] for v in VARIANTS if v in wanted}
            for rnd in range(args.rounds):
                for v in results:
                    if v.startswith("sdk") and rnd >= args.sdk_rounds:
                        continue
                    r = spawn(
                        v,
                        svc.endpoint,
                        run.name,
                        args.lines,
                        svc.pid,
                        tmp,
                        args.profile if rnd == 0 else None,
                    )
                    results[v].append(r)
                    print(
                        f"round {rnd + 1} ({v}): {r['count']:,} lines in {r['seconds']:.2f} s = "
                        f"{fmt_rate(r['lines_per_s'])} lines/s, peak RSS {r['peak_rss_mb']:.0f} MB"
                        f"{'' if not r['errors'] else ' ERRORS ' + str(r['errors'])}",
                        file=sys.stderr,
                    )
            live: list[dict] = []
            if "live" in wanted:
                for rnd in range(args.live_rounds):
                    r = spawn(
                        "live",
                        svc.endpoint,
                        "-",
                        args.lines,
                        svc.pid,
                        tmp,
                        args.profile if rnd == 0 else None,
                    )
                    live.append(r)
                    print(
                        f"live {rnd + 1}: first→last {r['seconds']:.2f} s, task {r.get('task_s')}, "
                        f"end lag {r.get('end_lag_s')}",
                        file=sys.stderr,
                    )
            setup["service_peak_rss_mb"] = svc.peak_rss_mb()
    text = report(args, mach, setup, results, live)
    path = save(
        "tail_logs",
        text,
        {"args": vars(args), "machine": mach, "setup": setup, "results": results, "live": live},
    )
    print(text)
    print(f"(saved to {path.relative_to(REPO)})", file=sys.stderr)
    rec.write(headline(results))


if __name__ == "__main__":
    main()
