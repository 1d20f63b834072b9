"""A flyte SDK program's 10-way fan-out (tests/flyte_programs/fanout.py) on the local Run service,
beside the SDK's local mode in the same run: wall time, and the overhead per child action.

    python bench/sdk_fanout.py [--quick] [--children 10] [--repeats 3] [--flyte-python PY]

Each child squares a number: from its process start to its end is overhead (the flyte runtime's
start, the code bundle unpacked, inputs and outputs, the controller's round trips); before that
it waits for one of the service's child slots (--max-child-actions, default: cores).
Where it goes: the import of the flyte runtime alone is measured beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import Record, figure
from _service import REPO, Service

DRIVER = Path(__file__).resolve().with_name("_sdk_fanout_driver.py")


def sdk_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HOME=str(home), DO_NOT_TRACK="1", NO_COLOR="1", TERM="dumb")
    return env


def runtime_import(python: str, env: dict[str, str], repeats: int) -> float:
    """Median seconds for a new interpreter to import the flyte runtime (every child pays it)."""
    took = []
    for _ in range(repeats):
        started = time.monotonic()
        subprocess.run([python, "-c", "import flyte._bin.runtime"], env=env, check=True)
        took.append(time.monotonic() - started)
    return statistics.median(took)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one repeat")
    ap.add_argument("--children", type=int, default=10)
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--max-child-actions", type=int, default=0, help="the service's option (0: cores)")
    ap.add_argument(
        "--flyte-python",
        default=os.environ.get("FRW_SDK212_PYTHON") or str(REPO / ".venv-sdk212" / "bin" / "python"),
        help="the flyte SDK 2.12.1's python (default: $FRW_SDK212_PYTHON, else .venv-sdk212/bin/python)",
    )
    args = ap.parse_args()
    if not Path(args.flyte_python).exists():
        print(f"no flyte SDK python at {args.flyte_python}: pass --flyte-python", file=sys.stderr)
        return 2
    rec = Record("sdk_fanout")
    repeats = args.repeats or (1 if args.quick else 3)
    with tempfile.TemporaryDirectory(prefix="frw-bench-sdk-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        env = sdk_env(home)
        service_args = ["--flyte-python", args.flyte_python]
        service_args += ["--max-child-actions", str(args.max_child_actions)]
        with Service(Path(tmp) / "data", args=service_args) as svc:
            proc = subprocess.run(
                [args.flyte_python, str(DRIVER), svc.endpoint, str(args.children), str(repeats)],
                env=env,
                cwd=home,
                capture_output=True,
                text=True,
                timeout=1800,
                check=False,
            )
            if proc.returncode != 0:
                print(
                    proc.stdout[-4000:],
                    proc.stderr[-4000:],
                    svc.log_path.read_text()[-4000:],
                    file=sys.stderr,
                )
                return 1
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        importing = runtime_import(args.flyte_python, env, max(3, repeats))
    service, local = statistics.median(result["service"]), statistics.median(result["local"])
    single = statistics.median(result["single"])
    child = statistics.median(result["child_process"])
    waited = statistics.median(result["child"])
    slots = args.max_child_actions or max(2, os.cpu_count() or 2)
    per_child_wall = (service - single) / args.children
    print(
        f"fan-out of {args.children}: service {service:.2f} s, local mode {local:.2f} s; one task alone"
        f" {single:.2f} s; child process start→end median {child:.2f} s (max {max(result['child_process']):.2f});"
        f" enqueued→succeeded median {waited:.2f} s;"
        f" wall per child beyond one task {per_child_wall:.2f} s with {slots} child slots;"
        f" flyte runtime import {importing:.2f} s"
    )
    path = rec.write(
        [
            figure(
                f"flyte SDK fan-out of {args.children} sub-tasks on the service (wall)",
                service,
                "s",
                baseline="the SDK's local mode, same program",
                baseline_value=local,
            ),
            figure(
                "overhead per child action (process start → end; the task does nothing)",
                child,
                "s",
                baseline="a new interpreter importing the flyte runtime",
                baseline_value=importing,
                target=("<=", 0.5, "value"),
                note=f"{slots} child slots; enqueued → succeeded {waited:.2f} s; wall per child beyond a"
                f" one-task run: {per_child_wall:.2f} s",
            ),
        ],
        extra={"samples": result, "runtime_import_s": importing, "child_slots": slots},
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
