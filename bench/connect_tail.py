"""TailLogs of N lines (1,000,000 by default) through the former grpcio server and the Connect
server (connectrpc under hypercorn), over gRPC and Connect, side by side in one run:

    python bench/connect_tail.py                  # 1M lines, 3 rounds
    python bench/connect_tail.py --lines 200000 --rounds 1

Set-up: one task printing N lines, run once; then, per round, each server in turn on the same
data folder, and on it each client variant in its own subprocess (bench/tail_logs.py's workers):

  a          bare grpc.aio RunLogsServiceStub counting lines (the gRPC floor)
  c          the widget's kernel path (follow_logs + to_columns + encode_batch), transport="grpc"
  c-connect  the same over transport="connect" (Connect server only)
  sdk212     flyte 2.12.1's Run.get_logs() (SelectCluster → DataProxyService/TailLogs over
             Connect; Connect server only; $FRW_SDK212_PYTHON or .venv-sdk212)

Output: a markdown table on stdout and in bench/results/connect-tail-*.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from _service import REPO, Service, machine, machine_line, save
from _tail_variants import DOMAIN, PROJECT, task_spec
from tail_logs import fmt_rate, spawn

SDK212 = os.environ.get("FRW_SDK212_PYTHON") or str(REPO / ".venv-sdk212/bin/python")
PLAN = {  # server -> variants run against it
    "grpcio": ["a", "c"],
    "connect": ["a", "c", "c-connect", "sdk212"],
}


def run_variant(variant: str, svc: Service, run: str, lines: int, tmp: Path) -> dict:
    if variant == "sdk212":
        out = tmp / f"sdk212-{os.getpid()}-{len(list(tmp.iterdir()))}.json"
        script = str(Path(__file__).with_name("_sdk212_logs.py"))
        cmd = [SDK212, script, svc.endpoint, PROJECT, DOMAIN, run, str(lines), str(svc.pid), str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"sdk212 failed:\n{proc.stdout}\n{proc.stderr}")
        import json

        return dict(json.loads(out.read_text()))
    transport = "connect" if variant == "c-connect" else "grpc"
    os.environ["FLYTE_RUN_WIDGET_TRANSPORT"] = transport  # the worker's default transport
    try:
        return spawn(
            "c" if variant.startswith("c") else variant, svc.endpoint, run, lines, svc.pid, tmp, None
        )
    finally:
        os.environ.pop("FLYTE_RUN_WIDGET_TRANSPORT", None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-sdk", action="store_true", help="skip flyte 2.12.1's get_logs")
    p.add_argument("--sdk-rounds", type=int, default=1, help="rounds of sdk212 (slow: ~3 min per 1M)")
    args = p.parse_args()
    if args.no_sdk or not Path(SDK212).exists():
        PLAN["connect"].remove("sdk212")
    mach = machine()

    import flyte_run_widget as frw
    from flyte_run_widget.client import loop as _loop
    from flyte_run_widget.client.rpc import get_client

    results: dict[tuple[str, str], list[dict]] = {(s, v): [] for s, vs in PLAN.items() for v in vs}
    with tempfile.TemporaryDirectory(prefix="frw-bench-connect-") as tmpname:
        tmp = Path(tmpname)
        with Service(tmp / "data") as svc:
            frw.init(svc.endpoint, project=PROJECT, domain=DOMAIN, transport="grpc")
            run = frw.run(task_spec(args.lines))
            run.wait(quiet=True)
            name = run.name
            _loop.submit(get_client().close()).result()
        print(f"run {name}: {args.lines:,} lines", file=sys.stderr)
        for rnd in range(args.rounds):
            for server, variants in PLAN.items():
                with Service(tmp / "data", server=server) as svc:
                    for v in variants:
                        if v == "sdk212" and rnd >= args.sdk_rounds:
                            continue
                        r = run_variant(v, svc, name, args.lines, tmp)
                        results[(server, v)].append(r)
                        print(
                            f"round {rnd + 1} {server}/{v}: {r['count']:,} lines in {r['seconds']:.2f} s"
                            f" = {fmt_rate(r['lines_per_s'])}/s {r['errors'] or ''}",
                            file=sys.stderr,
                        )
    base = statistics.median(r["lines_per_s"] for r in results[("grpcio", "c")])
    grpc_new = statistics.median(r["lines_per_s"] for r in results[("connect", "c")])
    out = [
        f"### TailLogs through the grpcio and the Connect server, {args.lines:,} lines, {args.rounds} round(s)",
        "",
        f"Machine: {machine_line(mach)}",
        "",
        "Median lines/s over rounds (range). × grpcio = against (c) on the grpcio server; × gRPC = "
        "against (c) over gRPC on the same server. CPU = user+sys seconds of the client process and "
        "of the service during the stream.",
        "",
        "| server | variant | lines/s | × grpcio (c) | × gRPC (c), same server | client CPU s | service CPU s | correct |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for (server, v), rs in results.items():
        med = statistics.median(r["lines_per_s"] for r in rs)
        rng = f"{fmt_rate(min(r['lines_per_s'] for r in rs))}–{fmt_rate(max(r['lines_per_s'] for r in rs))}"
        same = grpc_new if server == "connect" else base
        errs = [e for r in rs for e in r["errors"]]
        ok = "ok" if not errs else "FAIL: " + "; ".join(errs[:2])
        out.append(
            f"| {server} | {v} | {fmt_rate(med)} ({rng}) | {med / base:.2f}× | {med / same:.2f}× "
            f"| {statistics.median(r['cpu_s'] for r in rs):.2f} "
            f"| {statistics.median(r['service_cpu_s'] for r in rs):.2f} | {ok} ({rs[0]['count']:,}) |"
        )
    text = "\n".join(out) + "\n"
    print(text)
    data = {"machine": mach, "results": {f"{s}/{v}": rs for (s, v), rs in results.items()}}
    print(f"saved {save('connect-tail', text, data)}", file=sys.stderr)


if __name__ == "__main__":
    main()
