"""The figures a benchmark run leaves behind: one small committed JSON per benchmark.

    rec = Record("tail_logs")          # at the start of main(): commit, dirty flag, load, CPU
    ...
    rec.write([figure(...), ...])      # at the end: bench/results/tail_logs.json

The file says which code was measured (`git rev-parse --short HEAD` and whether the tree had
uncommitted changes outside the results), on what machine, when, under what load, and every
headline figure with the baseline measured in the same run. `bench/_summary.py` turns all of
them into the table at the top of BENCHMARKS.md; the raw reports stay in bench/results/raw/.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
# What the summary is made of, so a run that only rewrote them does not count as dirty code.
NOT_CODE = ("bench/results", "BENCHMARKS.md")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def code_state() -> tuple[str, bool | None]:
    """(short commit, dirty): dirty = uncommitted or untracked changes outside NOT_CODE."""
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    status = _git("status", "--porcelain", "--", ".", *(f":(exclude){p}" for p in NOT_CODE))
    return commit, (None if status is None else bool(status))


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def figure(
    name: str,
    value: float | str | None,
    unit: str = "",
    *,
    baseline: str | None = None,
    baseline_value: float | None = None,
    target: tuple[str, float | str, str] | None = None,
    met: bool | None = None,
    display: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """One row of the summary.

    target = (op, bound, on): op "<=" / ">=" / "==", on "value" or "ratio" (value / baseline);
    the summary judges it from the numbers. Op "is" takes a text bound ("all") and the verdict
    from `met`, for figures that are not one number; `display` replaces the formatted value.
    """

    def tidy(x: float | str | None) -> float | str | None:
        # Four decimals below 1,000 and one above keep every digit a table shows, not float noise.
        return round(x, 4 if abs(x) < 1000 else 1) if isinstance(x, float) else x

    return {
        "figure": name,
        "value": tidy(value),
        "unit": unit,
        "display": display,
        "baseline": baseline,
        "baseline_value": tidy(baseline_value),
        "target": list(target) if target else None,
        "met": met,
        "note": note,
    }


class Record:
    def __init__(self, name: str) -> None:
        self.name = name
        self.commit, self.dirty = code_state()
        self.started = dt.datetime.now(dt.UTC)
        self.load_start = os.getloadavg()[0]
        self.cpu_start = _cpu_times()
        self.t0 = time.monotonic()
        # As typed, relative to the repository, so the command can be pasted back.
        self.command = shlex.join(["python", f"bench/{Path(sys.argv[0]).name}", *sys.argv[1:]])

    def data(self, figures: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> dict[str, Any]:
        busy0, total0 = self.cpu_start
        busy1, total1 = _cpu_times()
        busy = (busy1 - busy0) / (total1 - total0) if total1 > total0 else None
        return {
            "benchmark": self.name,
            "command": self.command,
            "commit": self.commit,
            "dirty": self.dirty,
            "date": self.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "seconds": round(time.monotonic() - self.t0, 1),
            "machine": {
                "nproc": os.cpu_count(),
                "cpu": _cpu_model(),
                "python": sys.version.split()[0],
                "loadavg_1min_start": round(self.load_start, 2),
                "loadavg_1min_end": round(os.getloadavg()[0], 2),
                # All processes, this benchmark's included: how much of the machine was in use.
                "cpu_busy_pct": None if busy is None else round(100 * busy, 1),
            },
            "figures": figures,
            **(extra or {}),
        }

    def write(self, figures: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        path.write_text(json.dumps(self.data(figures, extra), indent=2, ensure_ascii=False) + "\n")
        print(
            f"figures: {path.relative_to(REPO)} (bench/run --summary puts them in BENCHMARKS.md)",
            file=sys.stderr,
        )
        return path
