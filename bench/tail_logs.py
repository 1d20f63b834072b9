"""TailLogs throughput: N log lines (1,000,000 by default) from the embedded service into the client.

    python bench/tail_logs.py                 # 1M lines, 3 rounds of every variant
    python bench/tail_logs.py --quick         # 100k lines, 2 rounds, no sdk-raw
    python bench/tail_logs.py --lines 300000 --rounds 1 --variants a,c

Set-up: the embedded service on a temp data dir, one task printing N lines, waited for. Then
each variant streams that finished attempt's log in its own subprocess (so peak RSS does not
mix), rounds interleaved (a b c d a b c d ...) so machine noise hits every variant alike:

  a   bare grpc.aio RunLogsServiceStub iterating TailLogs, counting lines (the protocol floor)
  a+  as (a), but reading every line's message, originator and timestamp (the protobuf floor)
  b   flyte_run_widget._follow.follow_logs over client.get_client(), counting lines
  c   (b) + what the widget's kernel side does with every batch: logs.to_columns, then split into
      messages (_batches.chunks: <= 5,000 lines / 512 KB) and logs.encode_batch (binary columns)
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
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from _service import REPO, Service, machine, machine_line, repo_env, save

PROJECT, DOMAIN = "bench", "development"
USER, SYSTEM = 1, 2
TAIL = " the quick brown fox jumps over the lazy dog 0123456789"  # lines are 64 bytes + newline

TASK_CODE = f"""
import sys
n = int(sys.argv[1]); w = sys.stdout.write; tail = {TAIL!r}
for s in range(0, n, 10000):
    w("".join([f"{{i:08d}}{{tail}}\\n" for i in range(s, min(n, s + 10000))]))
sys.stdout.flush()
"""

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


def task_spec(n: int) -> Any:
    from flyteidl2.core import identifier_pb2, tasks_pb2
    from flyteidl2.task import task_definition_pb2

    template = tasks_pb2.TaskTemplate(
        id=identifier_pb2.Identifier(
            resource_type=identifier_pb2.TASK, name="bench.print_lines", version="v1"
        ),
        type="container",
        container=tasks_pb2.Container(image="local", command=[sys.executable, "-c", TASK_CODE, str(n)]),
    )
    return task_definition_pb2.TaskSpec(task_template=template, short_name="print_lines")


def attempt_seconds(details: Any) -> float:
    a = details.attempts[-1]
    return (a.end_time.ToNanoseconds() - a.start_time.ToNanoseconds()) / 1e9


# -- the worker side: one variant in its own process ---------------------------------------------


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def service_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Check:
    """Counts lines and checks a sample of them: user line k (0-based) reads f"{k:08d}..." and
    sits at stream position k + (system lines before it)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.pos = 0
        self.lead: int | None = None  # system lines before the first user line
        self.errors: list[str] = []
        self.sampled = 0
        self.last: tuple[int, str] = (0, "")
        self._rng = random.Random(7)
        self.messages = 0  # widget messages, variant (c)
        self.wire_bytes = 0

    def batch(self, size: int, get: Any) -> None:
        """``get(i) -> (originator, text)`` for line i of a batch of ``size`` lines."""
        if size == 0:
            return
        if self.lead is None:
            i = 0
            while i < size and get(i)[0] == SYSTEM:
                i += 1
            if i < size:
                self.lead = self.pos + i
        idx = {0, size // 2, size - 1}
        idx.update(self._rng.randrange(size) for _ in range(5))
        for i in idx:
            self.point(self.pos + i, *get(i))
        self.last = get(size - 1)
        self.pos += size

    def encoded(self, count: int, buffers: list[bytes]) -> None:
        """A widget message's columns: count + 1 offsets, count timestamps and originators."""
        self.messages += 1
        self.wire_bytes += sum(map(len, buffers))
        sizes = [len(b) for b in buffers[1:]]
        if sizes != [4 * (count + 1), 8 * count, count] and len(self.errors) < 5:
            self.errors.append(f"message {self.messages}: {count} lines, column sizes {sizes}")

    def point(self, p: int, origin: int, text: str) -> None:
        self.sampled += 1
        if origin == SYSTEM:
            return
        lead = self.lead if self.lead is not None else 0
        try:
            k = int(text[:8])
        except ValueError:
            k = -1
        if k != p - lead and len(self.errors) < 5:
            self.errors.append(f"position {p}: expected user line {p - lead}, got {text[:40]!r}")

    def verdict(self) -> dict[str, Any]:
        system = self.pos - self.n
        errors = list(self.errors)
        if self.lead is None:
            errors.append("no user lines")
        if self.last[0] != SYSTEM:
            errors.append(f"last line is not the service's exit line: {self.last[1][:40]!r}")
        if system < 1 or system > 4:
            errors.append(f"{self.pos} lines for {self.n} user lines")
        out = {"count": self.pos, "system_lines": system, "sampled": self.sampled, "errors": errors}
        if self.messages:
            out.update(widget_messages=self.messages, widget_mb=self.wire_bytes / 1e6)
        return out


async def _variant_a(args: argparse.Namespace, read_all: bool) -> dict[str, Any]:
    import grpc
    from flyteidl2.common import identifier_pb2 as ids
    from flyteidl2.workflow import run_logs_service_pb2, run_logs_service_pb2_grpc

    channel = grpc.aio.insecure_channel(
        args.endpoint, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    )
    await channel.channel_ready()
    stub = run_logs_service_pb2_grpc.RunLogsServiceStub(channel)
    action_id = ids.ActionIdentifier(
        run=ids.RunIdentifier(project=PROJECT, domain=DOMAIN, name=args.run), name="a0"
    )
    req = run_logs_service_pb2.TailLogsRequest(action_id=action_id, attempt=1)
    check = Check(args.lines)
    m: dict[str, Any] = {"rss_before_mb": rss_mb()}
    c0, s0, t0 = cpu_s(), service_cpu(args.service_pid), time.perf_counter()
    t_first = None
    sink = 0
    async for resp in stub.TailLogs(req):
        if t_first is None:
            t_first = time.perf_counter()
        for group in resp.logs:
            lines = group.lines
            if read_all:
                for ln in lines:
                    sink += len(ln.message) + ln.originator + ln.timestamp.seconds
            check.batch(len(lines), lambda i, lines=lines: (lines[i].originator, lines[i].message))
    t1 = time.perf_counter()
    m.update(seconds=t1 - t0, first_s=(t_first or t1) - t0, cpu_s=cpu_s() - c0)
    m["service_cpu_s"] = service_cpu(args.service_pid) - s0
    await channel.close()
    m.update(check.verdict())
    return m


def _client_variant(args: argparse.Namespace, wire: bool) -> dict[str, Any]:
    import flyte_run_widget as frw
    from flyte_run_widget import _loop
    from flyte_run_widget._batches import chunks
    from flyte_run_widget._follow import follow_logs
    from flyte_run_widget.client import get_client
    from flyte_run_widget.logs import encode_batch, to_columns

    frw.init(args.endpoint, project=PROJECT, domain=DOMAIN)
    run = frw.Run.get(args.run)  # connects the channel before the clock starts
    client = get_client()
    check = Check(args.lines)

    async def consume() -> float | None:
        t_first = None
        async for batch in follow_logs(client, run.action_id, 1):
            if t_first is None:
                t_first = time.perf_counter()
            if wire:
                w = to_columns(batch)
                for chunk in chunks(w):
                    check.encoded(len(chunk), encode_batch(chunk))
                check.batch(len(w), lambda i, w=w: (w.origins[i], w.texts[i]))
            else:
                check.batch(len(batch), lambda i, b=batch: (b[i].originator, b[i].message))
        return t_first

    m: dict[str, Any] = {"rss_before_mb": rss_mb()}
    c0, s0, t0 = cpu_s(), service_cpu(args.service_pid), time.perf_counter()
    t_first = _loop.run_sync(consume())
    t1 = time.perf_counter()
    m.update(seconds=t1 - t0, first_s=(t_first or t1) - t0, cpu_s=cpu_s() - c0)
    m["service_cpu_s"] = service_cpu(args.service_pid) - s0
    m.update(check.verdict())
    return m


class _CountingNull:
    """stdout for show_logs: writes to /dev/null, counts lines, checks each chunk's first and
    last line."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.null = open(os.devnull, "w")  # noqa: SIM115
        self.t_first: float | None = None

    @staticmethod
    def _origin(text: str) -> int:
        return SYSTEM if text.startswith(("starting: ", "exited with code")) else USER

    def write(self, s: str) -> int:
        if not s:
            return 0
        if self.t_first is None:
            self.t_first = time.perf_counter()
        self.null.write(s)
        n = s.count("\n")
        first = s[: s.find("\n")]
        last = s[s.rfind("\n", 0, len(s) - 1) + 1 :].rstrip("\n")
        c = self.check
        if c.lead is None:
            c.lead = c.pos + (1 if self._origin(first) == SYSTEM else 0)
        c.point(c.pos, self._origin(first), first)
        c.point(c.pos + n - 1, self._origin(last), last)
        c.last = (self._origin(last), last)
        c.pos += n
        return len(s)

    def flush(self) -> None:
        self.null.flush()


def _variant_d(args: argparse.Namespace) -> dict[str, Any]:
    import flyte_run_widget as frw

    frw.init(args.endpoint, project=PROJECT, domain=DOMAIN)
    run = frw.Run.get(args.run)
    check = Check(args.lines)
    sink = _CountingNull(check)
    m: dict[str, Any] = {"rss_before_mb": rss_mb()}
    real = sys.stdout
    c0, s0, t0 = cpu_s(), service_cpu(args.service_pid), time.perf_counter()
    sys.stdout = sink  # type: ignore[assignment]
    try:
        run.show_logs(raw=True)
    finally:
        sys.stdout = real
    t1 = time.perf_counter()
    m.update(seconds=t1 - t0, first_s=(sink.t_first or t1) - t0, cpu_s=cpu_s() - c0)
    m["service_cpu_s"] = service_cpu(args.service_pid) - s0
    m.update(check.verdict())
    return m


def _variant_live(args: argparse.Namespace) -> dict[str, Any]:
    """Create a run and tail it as variant (c) does while it prints."""
    import flyte_run_widget as frw
    from flyte_run_widget import _loop
    from flyte_run_widget._batches import chunks
    from flyte_run_widget._follow import follow_logs
    from flyte_run_widget.client import get_client
    from flyte_run_widget.logs import encode_batch, to_columns

    frw.init(args.endpoint, project=PROJECT, domain=DOMAIN)
    list(frw.Run.listall(limit=1))  # connect first
    client = get_client()
    check = Check(args.lines)
    m: dict[str, Any] = {"rss_before_mb": rss_mb()}
    c0, s0 = cpu_s(), service_cpu(args.service_pid)
    t_create = time.time()
    run = frw.run(task_spec(args.lines))
    marks: dict[str, float] = {}

    async def consume() -> None:
        max_lag = 0.0
        first_ts = last_ts = None
        async for batch in follow_logs(client, run.action_id, 1):
            now = time.time()
            w = to_columns(batch)
            if not w:
                continue
            marks.setdefault("first_recv", now)
            marks["last_recv"] = now
            users = [(w.stamps[i], w.origins[i]) for i in (0, -1) if w.origins[i] != SYSTEM]
            if users:
                first_ts = first_ts if first_ts is not None else users[0][0] / 1000
                last_ts = users[-1][0] / 1000
                max_lag = max(max_lag, now - last_ts)
            for chunk in chunks(w):
                check.encoded(len(chunk), encode_batch(chunk))
            check.batch(len(w), lambda i, w=w: (w.origins[i], w.texts[i]))
        marks["max_lag"] = max_lag
        if first_ts is not None and last_ts is not None:
            marks["first_ts"], marks["last_ts"] = first_ts, last_ts

    _loop.run_sync(consume())
    t_end = time.time()
    run.wait(quiet=True)
    details = run.details()
    m.update(cpu_s=cpu_s() - c0, service_cpu_s=service_cpu(args.service_pid) - s0)
    m["task_s"] = attempt_seconds(details.action_details.pb2)
    m["create_to_end_s"] = t_end - t_create
    m["seconds"] = marks.get("last_recv", t_end) - marks.get("first_recv", t_create)  # first to last line
    m["create_to_first_s"] = marks.get("first_recv", t_end) - t_create
    if "first_ts" in marks:
        m["service_span_s"] = marks["last_ts"] - marks["first_ts"]
        m["end_lag_s"] = marks["last_recv"] - marks["last_ts"]
    m["max_lag_s"] = marks.get("max_lag")
    m["run"] = run.name
    m.update(check.verdict())
    return m


def worker(args: argparse.Namespace) -> None:
    import asyncio

    v = args.worker
    if v in ("a", "a+"):
        m = asyncio.run(_variant_a(args, read_all=v == "a+"))
    elif v in ("b", "c"):
        m = _client_variant(args, wire=v == "c")
    elif v == "d":
        m = _variant_d(args)
    elif v == "live":
        m = _variant_live(args)
    else:
        raise SystemExit(f"unknown variant {v!r}")
    m["variant"] = v
    m["peak_rss_mb"] = rss_mb()
    m["lines_per_s"] = m["count"] / m["seconds"] if m["seconds"] else 0.0
    Path(args.out).write_text(json.dumps(m))


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


if __name__ == "__main__":
    main()
