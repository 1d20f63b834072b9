"""CPU seconds per process kind from /proc (Linux), for bench/widget_browser.py's CPU split."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_snapshot() -> dict[str, Any] | None:
    """Machine CPU (busy, all, in s) and every process's own + reaped children's CPU (Linux)."""
    try:
        f = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    v = [int(x) for x in f]
    busy = sum(v) - v[3] - (v[4] if len(v) > 4 else 0)  # minus idle and iowait
    procs: dict[int, tuple[int, float, str]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        rest = stat.rsplit(")", 1)[1].split()
        cpu = sum(int(x) for x in rest[11:15]) / CLK_TCK  # utime stime cutime cstime
        procs[int(d.name)] = (int(rest[1]), cpu, cmd)
    steal = v[7] if len(v) > 7 else 0
    return {"busy": busy / CLK_TCK, "steal": steal / CLK_TCK, "all": sum(v) / CLK_TCK, "procs": procs}


def renice_renderers(nice: int) -> int:
    """Set the nice value of every thread of this bench's Chromium renderers (an experiment: does
    the page still have long tasks when it is first in line for a CPU?). Threads changed."""
    snap = cpu_snapshot()
    if not snap:
        return 0
    procs, me, changed = snap["procs"], os.getpid(), 0
    for pid, (_, _, cmd) in procs.items():
        p = pid
        while p > 1 and p in procs and p != me:
            p = procs[p][0]
        if p != me or "--type=renderer" not in cmd:
            continue
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                os.setpriority(os.PRIO_PROCESS, int(task.name), nice)
                changed += 1
            except OSError:
                pass
    return changed


def _kind(cmd: str) -> str | None:
    if "chromium" in cmd or "chrome" in cmd:
        return "Chromium renderers" if "--type=renderer" in cmd else "Chromium (browser, GPU, network)"
    if "ipykernel" in cmd:
        return "kernel"
    if "jupyter" in cmd:
        return "jupyter_server"
    if "flyte_run_widget.server" in cmd:
        return "Run service (+ task)"
    if "playwright" in cmd or cmd.split(" ", 1)[0].endswith("node"):
        return "Playwright driver"
    return None


def cpu_split(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, float] | None:
    """CPU seconds between two snapshots: this bench's processes by kind, and the rest of the machine."""
    if not a or not b:
        return None
    procs = b["procs"]
    me = os.getpid()
    out: dict[str, float] = {}
    for pid, (_, cpu, cmd) in procs.items():
        kind, p, mine = _kind(cmd), pid, False
        while p > 1 and p in procs:  # a descendant of this script?
            if p == me:
                mine = True
                break
            kind = kind or _kind(procs[p][2])
            p = procs[p][0]
        if not mine:
            continue
        kind = kind or "bench script"
        out[kind] = out.get(kind, 0.0) + cpu - (a["procs"][pid][1] if pid in a["procs"] else 0.0)
    wall = (b["all"] - a["all"]) / (os.cpu_count() or 1)
    out["steal (hypervisor)"] = b["steal"] - a["steal"]
    out["other processes on the machine"] = (b["busy"] - a["busy"]) - sum(out.values())
    out["machine busy"] = b["busy"] - a["busy"]
    out["wall s"] = wall
    return out
