"""Run the programs in ``tests/flyte_programs/`` with the public flyte SDK, in its local mode and
on the local Run service, and print what each ended with as JSON (the last line on stdout).

Run by ``tests/test_sdk_programs.py`` with the SDK's own interpreter (``FRW_SDK212_PYTHON``):

    python tests/sdk_programs_client.py ENDPOINT SCENARIO [ARGS...]

Scenarios: ``hello``, ``failing``, ``fanout``, ``parent_fails``, ``abort PID_FILE``,
``abort_fanout PID_DIR CHILDREN``, ``unsupported``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

PROGRAMS = Path(__file__).resolve().with_name("flyte_programs")
sys.path.insert(0, str(PROGRAMS))
PROJECT, DOMAIN = "sdkprograms", "development"
ABORT_TIMEOUT = 60.0


def local_mode() -> None:
    import flyte

    flyte.init(root_dir=PROGRAMS)


def on_service(endpoint: str) -> None:
    import flyte

    url = f"http://{endpoint}"
    flyte.init(endpoint=url, insecure=True, project=PROJECT, domain=DOMAIN, root_dir=PROGRAMS)


def error_of(exc: BaseException) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "code": str(getattr(exc, "code", "")),
        "message": str(exc),
    }


def attempt(fn: Any) -> dict[str, Any]:
    """What ``fn`` returned, or what it raised."""
    try:
        return {"ok": True, "value": fn()}
    except Exception as exc:
        return {"ok": False, "error": error_of(exc)}


def remote_error(run: Any) -> dict[str, Any]:
    """The run's error as the service recorded it (RunDetails, read through the SDK)."""
    info = run.details().pb2.action.error_info
    return {"code": info.code, "message": info.message, "kind": int(info.kind)}


def run_remote(endpoint: str, task: Any, **inputs: Any) -> tuple[Any, dict[str, Any]]:
    import flyte
    from flyte.remote import Run

    on_service(endpoint)
    run = flyte.run(task, **inputs)
    fetched = Run.get(run.name)
    fetched.wait(quiet=True)
    logs = io.StringIO()
    with contextlib.redirect_stdout(logs):
        fetched.show_logs(raw=True, max_lines=10_000)
    return fetched, {"name": run.name, "phase": fetched.phase.value, "logs": logs.getvalue()}


def hello(endpoint: str) -> dict[str, Any]:
    import flyte
    import hello as program

    local_mode()
    local = flyte.run(program.main, name="World").outputs()
    run, result = run_remote(endpoint, program.main, name="World")
    result["outputs"] = list(run.outputs())
    result["local_outputs"] = list(local)
    return result


def failing(endpoint: str) -> dict[str, Any]:
    import failing as program
    import flyte

    local_mode()
    result: dict[str, Any] = {"local": attempt(lambda: flyte.run(program.main, x=3).outputs())}
    run, remote = run_remote(endpoint, program.main, x=3)
    result.update(remote, error=remote_error(run))
    return result


def tree(name: str) -> list[dict[str, Any]]:
    """The run's actions as the SDK lists them (ListActions)."""
    from flyte.remote import Action

    return [
        {
            "name": a.name,
            "phase": a.phase.value,
            "parent": a.pb2.metadata.parent,
            "group": a.pb2.metadata.group,
        }
        for a in Action.listall(for_run_name=name)
    ]


def fanout(endpoint: str) -> dict[str, Any]:
    import fanout as program
    import flyte

    local_mode()
    local = flyte.run(program.main, n=10).outputs()
    run, result = run_remote(endpoint, program.main, n=10)
    result.update(outputs=list(run.outputs()), local_outputs=list(local), tree=tree(run.name))
    result["child_logs"] = child_logs(run.name)
    return result


def child_logs(name: str) -> dict[str, str]:
    """Each sub-task's log, as ``Action.show_logs`` prints it."""
    from flyte.remote import Action

    logs = {}
    for action in Action.listall(for_run_name=name):
        if action.name != "a0":
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                action.show_logs(raw=True)
            logs[action.name] = printed.getvalue()
    return logs


def parent_fails(endpoint: str) -> dict[str, Any]:
    import flyte
    import parent_fails as program

    local_mode()
    result: dict[str, Any] = {"local": attempt(lambda: flyte.run(program.main, x=5).outputs())}
    run, remote = run_remote(endpoint, program.main, x=5)
    result.update(remote, error=remote_error(run), tree=tree(run.name))
    return result


def abort(endpoint: str, pid_file: str) -> dict[str, Any]:
    import flyte
    import sleeper as program
    from flyte.remote import Run

    on_service(endpoint)
    run = flyte.with_runcontext(env_vars={"PID_FILE": pid_file}).run(program.main, seconds=600.0)
    fetched = Run.get(run.name)
    deadline = time.monotonic() + 120
    while not Path(pid_file).exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # polls a file another process writes: nothing to await
    seen = Run.get(run.name).phase.value
    started = time.monotonic()
    fetched.abort(reason="stopped by the programs test")
    # Bounded: a run the abort did not end would keep wait() forever.
    waiting = threading.Thread(target=fetched.wait, kwargs={"quiet": True}, daemon=True)
    waiting.start()
    waiting.join(ABORT_TIMEOUT)
    return {
        "name": run.name,
        "phase_before": seen,
        "phase": Run.get(run.name).phase.value,
        "abort_to_end_seconds": round(time.monotonic() - started, 2),
    }


def abort_fanout(endpoint: str, pid_dir: str, children: str) -> dict[str, Any]:
    import flyte
    import sleepy_fanout as program
    from flyte.remote import Run

    on_service(endpoint)
    # The run's env_vars reach every sub-task too (EnqueueAction carries no run spec).
    run = flyte.with_runcontext(env_vars={"PID_DIR": pid_dir}).run(program.main, n=int(children))
    expected = int(children) + 1
    deadline = time.monotonic() + 180
    while len(list(Path(pid_dir).iterdir())) < expected and time.monotonic() < deadline:
        time.sleep(0.1)  # polls files other processes write: nothing to await
    fetched = Run.get(run.name)
    fetched.abort(reason="fan-out stopped by the programs test")
    waiting = threading.Thread(target=fetched.wait, kwargs={"quiet": True}, daemon=True)
    waiting.start()
    waiting.join(ABORT_TIMEOUT)
    return {"name": run.name, "phase": Run.get(run.name).phase.value, "tree": tree(run.name)}


def unsupported(endpoint: str) -> dict[str, Any]:
    import flyte
    import gpu
    import gpu_child
    import needs_secret

    on_service(endpoint)
    result = {
        "gpu": attempt(lambda: flyte.run(gpu.main).name),
        "secret": attempt(lambda: flyte.run(needs_secret.main).name),
    }
    run = flyte.run(gpu_child.main, x=1)
    run.wait(quiet=True)
    result["gpu_child"] = {"phase": run.phase.value, "error": remote_error(run)}
    return result


def main() -> int:
    endpoint, scenario, *args = sys.argv[1:]
    scenarios = {
        "hello": hello,
        "failing": failing,
        "fanout": fanout,
        "parent_fails": parent_fails,
        "abort": abort,
        "abort_fanout": abort_fanout,
        "unsupported": unsupported,
    }
    result = scenarios[scenario](endpoint, *args)
    import flyte

    result["flyte_version"] = flyte.__version__
    print(json.dumps(result, default=str), flush=True)
    # Not a normal exit: a wait() left running (a failed abort) must not keep the process alive.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
