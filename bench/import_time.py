"""`import flyte_run_widget` time against `import flyte` (issue #4: ≤ 0.3 s and less than flyte).

    python bench/import_time.py            # 30 interleaved repeats per module, + -X importtime
    python bench/import_time.py --quick    # 10 repeats
    python bench/import_time.py --repeats N --flyte-python PATH

Each repeat is a fresh subprocess (warm page cache, .pyc already written by a discarded first
run). Two figures per repeat: the import statement alone (perf_counter around it, inside the
process) and the whole process wall time (interpreter start + import + exit). Repeats are
interleaved (ours, flyte, ours, …) so machine noise hits both alike. Also timed: the widget
path (`from flyte_run_widget import RunWidget`, what the first `run` cell display pays).

The baseline runs in a separate venv with the public `flyte` SDK: `.venv-sdk` at the repo root
if present, else --flyte-python. `python -X importtime` gives the top offenders of ours.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import Record, figure
from _service import REPO, machine, machine_line, repo_env, save

STMT = {
    "flyte_run_widget": "import flyte_run_widget",
    "flyte_run_widget.RunWidget": "from flyte_run_widget import RunWidget",
    "flyte (baseline)": "import flyte",
}


def once(python: str, stmt: str, env: dict[str, str]) -> tuple[float, float]:
    code = f"import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
    t0 = time.perf_counter()
    out = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, check=True, cwd="/")
    wall = time.perf_counter() - t0
    return float(out.stdout.strip().splitlines()[-1]), wall


def importtime(python: str, stmt: str, env: dict[str, str], top: int) -> list[tuple[int, int, str]]:
    out = subprocess.run(
        [python, "-X", "importtime", "-c", stmt], env=env, capture_output=True, text=True, check=True, cwd="/"
    )
    rows = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, rest = line.split(":", 1)
        self_us, cum_us, name = rest.split("|", 2)
        rows.append((int(self_us), int(cum_us), name.rstrip()))
    return rows


def top_level(rows: list[tuple[int, int, str]], top: int) -> list[tuple[int, str]]:
    """Cumulative time of each top-level package (first dotted part) imported by the statement."""
    by_pkg: dict[str, int] = {}
    for self_us, _cum, name in rows:
        pkg = name.strip().split(".")[0]
        by_pkg[pkg] = by_pkg.get(pkg, 0) + self_us
    return sorted(((us, pkg) for pkg, us in by_pkg.items()), reverse=True)[:top]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int)
    ap.add_argument(
        "--flyte-python",
        default=os.environ.get("FRW_SDK_PYTHON") or str(REPO / ".venv-sdk" / "bin" / "python"),
        help="the public flyte SDK's python (default: $FRW_SDK_PYTHON, else .venv-sdk/bin/python)",
    )
    args = ap.parse_args()
    rec = Record("import_time")
    repeats = args.repeats or (10 if args.quick else 30)
    ours = sys.executable
    env = repo_env()
    flyte_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    have_flyte = Path(args.flyte_python).exists()
    pythons = {"flyte_run_widget": ours, "flyte_run_widget.RunWidget": ours}
    if have_flyte:
        pythons["flyte (baseline)"] = args.flyte_python
    envs = {k: (flyte_env if k.startswith("flyte (") else env) for k in pythons}
    flyte_version = "?"
    if have_flyte:
        flyte_version = subprocess.run(
            [args.flyte_python, "-c", "import importlib.metadata as m; print(m.version('flyte'))"],
            capture_output=True,
            text=True,
            env=flyte_env,
        ).stdout.strip()
    m = machine()
    for name, py in pythons.items():  # warm: write .pyc, fill the page cache
        once(py, STMT[name], envs[name])
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in pythons}
    for _ in range(repeats):
        for name, py in pythons.items():
            samples[name].append(once(py, STMT[name], envs[name]))
    bare = [once(ours, "pass", env)[1] for _ in range(min(repeats, 10))]

    base = samples.get("flyte (baseline)")
    base_imp = statistics.median(s[0] for s in base) if base else None
    lines = [
        "## import time",
        "",
        f"Machine: {machine_line(m)}; flyte {flyte_version} in {args.flyte_python if have_flyte else '(missing)'}",
        "",
        f"{repeats} fresh subprocesses per row, interleaved. Import = perf_counter around the statement "
        f"inside the process; process = wall time of the whole `python -c` (bare interpreter: median "
        f"{statistics.median(bare):.3f} s).",
        "",
        "| statement | import median s (p10–p90) | process median s | ratio to `import flyte` | target ≤ 0.3 s |",
        "|---|---:|---:|---:|---|",
    ]
    data: dict[str, object] = {"machine": m, "flyte": flyte_version, "repeats": repeats, "rows": {}}
    for name, ss in samples.items():
        imp = sorted(s[0] for s in ss)
        wall = statistics.median(s[1] for s in ss)
        med = statistics.median(imp)
        p10, p90 = imp[len(imp) // 10], imp[min(len(imp) - 1, len(imp) * 9 // 10)]
        ratio = f"{med / base_imp:.2f}×" if base_imp else "n/a"
        ok = "met" if med <= 0.3 else "not met"
        ok = (
            "" if name.startswith("flyte (") else ok if name == "flyte_run_widget" else f"({ok}; widget path)"
        )
        lines.append(f"| `{STMT[name]}` | {med:.3f} ({p10:.3f}–{p90:.3f}) | {wall:.3f} | {ratio} | {ok} |")
        data["rows"][name] = {"import_s": imp, "process_median_s": wall}  # type: ignore[index]

    for name in ("flyte_run_widget", "flyte_run_widget.RunWidget"):
        rows = importtime(ours, STMT[name], env, 15)
        total = sum(r[1] for r in rows if len(r[2]) - len(r[2].lstrip()) == 1)  # top-level imports
        lines += [
            "",
            f"`python -X importtime -c '{STMT[name]}'`: total {total / 1e6:.3f} s (one run). "
            "Top-level packages by summed self time:",
            "",
            "| package | self ms | share |",
            "|---|---:|---:|",
        ]
        for us, pkg in top_level(rows, 10):
            lines.append(f"| {pkg} | {us / 1000:.1f} | {us / total:.0%} |")
        lines += ["", "Slowest single modules (cumulative, nested under the rows above):", ""]
        lines += ["| module | cumulative ms | self ms |", "|---|---:|---:|"]
        for self_us, cum_us, mod in sorted(rows, key=lambda r: -r[1])[1:13]:
            lines.append(f"| `{mod.strip()}` | {cum_us / 1000:.1f} | {self_us / 1000:.1f} |")
        data[f"importtime {name}"] = rows
    text = "\n".join(lines) + "\n"
    print(text)
    print(f"saved {save('import_time', text, data)}", file=sys.stderr)
    ours_imp = statistics.median(s[0] for s in samples["flyte_run_widget"])
    widget_imp = statistics.median(s[0] for s in samples["flyte_run_widget.RunWidget"])
    rec.write(
        [
            figure(
                "`import flyte_run_widget`, median",
                ours_imp,
                "s",
                baseline=f"`import flyte` {flyte_version}" if base_imp else None,
                baseline_value=base_imp,
                target=("<=", 0.3, "value"),
            ),
            figure(
                "`from flyte_run_widget import RunWidget`, median",
                widget_imp,
                "s",
                baseline=f"`import flyte` {flyte_version}" if base_imp else None,
                baseline_value=base_imp,
            ),
        ]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
