"""Baseline for bench/tail_logs.py: the public ``flyte`` SDK's own log viewer reading a finished
attempt's log from the local service. Runs with the SDK's interpreter (``.venv-sdk``: flyte 2.0.x,
grpcio<1.80), never the project's, and imports nothing from the project:

    .venv-sdk/bin/python bench/_sdk_viewer.py ENDPOINT PROJECT DOMAIN RUN LINES SERVICE_PID OUT [raw]

Without ``raw``: ``Run.show_logs()`` as a notebook with ipywidgets gets it: ``AsyncLogViewer``
(rich ``Live``, 20 refreshes/s, the last 30 lines re-rendered on every line), its console
pointed at /dev/null as a terminal. With ``raw``: ``Run.show_logs(raw=True)`` (one
``console.print`` per line). Writes the same JSON fields as the project's variants.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def service_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    endpoint, project, domain, run_name, lines, service_pid, out = sys.argv[1:8]
    raw = sys.argv[8:] == ["raw"]
    n, pid = int(lines), int(service_pid)

    import flyte
    import flyte.remote._logs as sdk_logs
    from flyte.remote import Run
    from rich.console import Console

    devnull = open(os.devnull, "w")  # noqa: SIM115
    sdk_logs.Console = lambda: Console(file=devnull, force_terminal=True, width=120)  # type: ignore[misc]
    seen: dict[str, object] = {}
    viewer_run = sdk_logs.AsyncLogViewer.run

    async def run_and_keep(self: sdk_logs.AsyncLogViewer) -> None:
        seen["viewer"] = self
        await viewer_run(self)

    sdk_logs.AsyncLogViewer.run = run_and_keep  # type: ignore[method-assign]
    counted = {"n": 0, "last": ""}
    if raw:
        fmt = sdk_logs._format_line

        def counting(line, show_ts, filter_system):  # type: ignore[no-untyped-def]
            counted["n"] += 1
            counted["last"] = line.message
            return fmt(line, show_ts, filter_system)

        sdk_logs._format_line = counting

    flyte.init(endpoint=endpoint, insecure=True, project=project, domain=domain)
    run = Run.get(run_name)
    run.details()
    m: dict[str, object] = {"rss_before_mb": rss_mb()}
    c0, s0, t0 = cpu_s(), service_cpu(pid), time.perf_counter()
    run.show_logs(raw=raw)
    t1 = time.perf_counter()
    m.update(seconds=t1 - t0, first_s=0.0, cpu_s=cpu_s() - c0, service_cpu_s=service_cpu(pid) - s0)
    errors: list[str] = []
    if raw:
        count, last, user_last = counted["n"], str(counted["last"]), ""
    else:
        viewer = seen["viewer"]
        count = viewer.total_lines  # type: ignore[attr-defined]
        shown = [t.plain for t in viewer.lines]  # type: ignore[attr-defined]
        last = shown[-1] if shown else ""
        user_last = shown[-2] if len(shown) > 1 else ""
        if not user_last.strip().startswith(f"{n - 1:08d}"):
            errors.append(f"line before the exit line is {user_last[:30]!r}")
    if "exited with code 0" not in last:
        errors.append(f"last line is {last[:40]!r}")
    system = int(count) - n
    if not 1 <= system <= 4:
        errors.append(f"{count} lines for {n} user lines")
    m.update(count=count, system_lines=system, sampled=0, errors=errors, peak_rss_mb=rss_mb())
    m["lines_per_s"] = count / m["seconds"] if m["seconds"] else 0.0  # type: ignore[operator]
    m["sdk"] = f"flyte {flyte.__version__}"
    with open(out, "w") as f:
        json.dump(m, f)


if __name__ == "__main__":
    main()
