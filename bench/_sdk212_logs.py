"""flyte 2.12.1's ``Run.get_logs()`` (SelectCluster, then DataProxyService/TailLogs over Connect)
reading a finished attempt's log, for bench/connect_tail.py. Runs with that SDK's interpreter
($FRW_SDK212_PYTHON or .venv-sdk212), never the project's, and imports nothing from the project:

    .venv-sdk212/bin/python bench/_sdk212_logs.py ENDPOINT PROJECT DOMAIN RUN LINES SERVICE_PID OUT

Writes the same JSON fields as bench/_tail_variants.py.
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
    n, pid = int(lines), int(service_pid)

    import flyte
    from flyte.remote import Run

    flyte.init(endpoint=endpoint, insecure=True, project=project, domain=domain)
    run = Run.get(run_name)
    run.details()
    m: dict[str, object] = {"rss_before_mb": rss_mb()}
    c0, s0, t0 = cpu_s(), service_cpu(pid), time.perf_counter()
    count, errors, user = 0, [], 0
    for line in run.get_logs():
        text = line.strip()
        if text[:8].isdigit():
            if int(text[:8]) != user:
                errors.append(f"line {count} is {text[:20]!r}, expected user line {user}")
                user = int(text[:8])
            user += 1
        count += 1
    t1 = time.perf_counter()
    m.update(seconds=t1 - t0, first_s=0.0, cpu_s=cpu_s() - c0, service_cpu_s=service_cpu(pid) - s0)
    if user != n:
        errors.append(f"{user} user lines, expected {n}")
    m.update(count=count, system_lines=count - n, sampled=0, errors=errors[:3], peak_rss_mb=rss_mb())
    m["lines_per_s"] = count / m["seconds"] if m["seconds"] else 0.0  # type: ignore[operator]
    m["sdk"] = f"flyte {flyte.__version__}"
    with open(out, "w") as f:
        json.dump(m, f)


if __name__ == "__main__":
    main()
