"""Run by bench/sdk_fanout.py in the flyte SDK's own interpreter: the fan-out program of
tests/flyte_programs/ in the SDK's local mode and on the service, as JSON on the last line.

    python bench/_sdk_fanout_driver.py ENDPOINT N REPEATS
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

PROGRAMS = Path(__file__).resolve().parents[1] / "tests" / "flyte_programs"
sys.path.insert(0, str(PROGRAMS))


def main() -> int:
    endpoint, n, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    import fanout
    import flyte
    import hello
    from flyte.remote import Action, ActionDetails
    from flyteidl2.common.phase_pb2 import ACTION_PHASE_INITIALIZING as INITIALIZING

    result: dict[str, list[float]] = {
        "local": [],
        "service": [],
        "single": [],
        "child": [],
        "root": [],
        "child_process": [],
    }
    flyte.init(root_dir=PROGRAMS)
    for _ in range(repeats):
        started = time.monotonic()
        flyte.run(fanout.main, n=n).outputs()
        result["local"].append(time.monotonic() - started)
    flyte.init(
        endpoint=f"http://{endpoint}", insecure=True, project="bench", domain="development", root_dir=PROGRAMS
    )
    for _ in range(repeats):
        # One task alone: what a run costs without children (upload cached after the first).
        started = time.monotonic()
        run = flyte.run(hello.main, name="bench")
        run.wait(quiet=True)
        result["single"].append(time.monotonic() - started)
        started = time.monotonic()
        run = flyte.run(fanout.main, n=n)
        run.wait(quiet=True)
        result["service"].append(time.monotonic() - started)
        assert list(run.outputs()) == [sum(i * i for i in range(n))], run.outputs()
        for action in Action.listall(for_run_name=run.name):
            key = "root" if action.name == "a0" else "child"
            result[key].append(action.pb2.status.duration_ms / 1000)
            if key == "child":
                # Each child does no work: from its process start (INITIALIZING) to its end is
                # overhead; before that it waited for a child slot.
                attempt = ActionDetails.get_details(action.action_id).pb2.attempts[-1]
                begun = [t for t in attempt.phase_transitions if t.phase == INITIALIZING]
                if begun:
                    life = attempt.end_time.ToNanoseconds() - begun[0].start_time.ToNanoseconds()
                    result["child_process"].append(life / 1e9)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
