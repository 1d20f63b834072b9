"""The side of bench/tail_logs.py that runs in each variant's own subprocess: the task whose log
is read, the variants themselves ((a), (a+), (b), (c), (d), live), and the check that every line
sits where its number says. ``worker(args)`` runs one and writes its figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))


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
    from flyte_run_widget.client import loop as _loop
    from flyte_run_widget.client.rpc import get_client
    from flyte_run_widget.client.streams import follow_logs
    from flyte_run_widget.notebook.batches import chunks
    from flyte_run_widget.remote.log_lines import encode_batch, to_columns

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
        return SYSTEM if text.startswith(("started ", "exited with code")) else USER

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
    from flyte_run_widget.client import loop as _loop
    from flyte_run_widget.client.rpc import get_client
    from flyte_run_widget.client.streams import follow_logs
    from flyte_run_widget.notebook.batches import chunks
    from flyte_run_widget.remote.log_lines import encode_batch, to_columns

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
