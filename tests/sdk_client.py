"""Drive the local Run service with the public ``flyte`` SDK (2.0.x, gRPC) and print JSON.

Run by ``tests/test_sdk_compat.py`` with the SDK's own interpreter (a separate environment
with ``flyte==2.0.*`` and ``grpcio<1.80``), never with the project's:

    python tests/sdk_client.py ENDPOINT PROJECT DOMAIN GATE SUCCEEDED FAILED RUNNING

SUCCEEDED is running and finishes once the file GATE exists; the script creates it after
``Run.get`` so that ``wait()`` follows the run to its end.

The last line on stdout is one JSON object with what each SDK call returned. Every gRPC error
status the SDK saw and every OAuth refresh it attempted are recorded too, so the test can check
that the service never answered UNKNOWN or UNAUTHENTICATED (on either, flyte 2.0 starts an
OAuth flow).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from typing import Any

import grpc
import grpc.aio
from sdk_script_support import record_errors, refuse_sign_in, step

# Every status code the SDK's calls failed with, in order.
STATUS_SEEN: list[str] = []
# Each time the SDK tried to (re)authenticate: it does so on UNAUTHENTICATED or UNKNOWN.
AUTH_REFRESHES: list[str] = []

record_errors(grpc.aio.AioRpcError, STATUS_SEEN)


def main() -> int:
    endpoint, project, domain, gate, succeeded, failed, running = sys.argv[1:8]

    import flyte
    from flyte.remote import Run

    refuse_sign_in(AUTH_REFRESHES)
    results: dict[str, Any] = {"flyte_version": flyte.__version__, "grpc_version": grpc.__version__}

    # No org: the SDK derives one from the endpoint ("127" for 127.0.0.1), which the service accepts.
    flyte.init(endpoint=endpoint, insecure=True, project=project, domain=domain)
    from flyte._initialize import get_init_config

    results["org"] = get_init_config().org

    # Run.get + wait on the succeeding run, then its logs and outputs.
    ok_run = step(results, "get_succeeded", lambda: Run.get(succeeded))
    if ok_run is not None:
        results["get_succeeded"].update(name=ok_run.name, phase=ok_run.phase.value, raw=int(ok_run.raw_phase))
        with open(gate, "w"):
            pass
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            step(results, "wait_succeeded", lambda: ok_run.wait())
        results["wait_succeeded"].update(
            phase=ok_run.phase.value, done=ok_run.done(), printed=buffer.getvalue()
        )

        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            step(results, "logs_succeeded", lambda: ok_run.show_logs(raw=True))
        results["logs_succeeded"]["text"] = buffer.getvalue()
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            step(results, "user_logs_succeeded", lambda: ok_run.show_logs(raw=True, filter_system=True))
        results["user_logs_succeeded"]["text"] = buffer.getvalue()

        inputs = step(results, "inputs_succeeded", lambda: ok_run.inputs())
        if inputs is not None:
            results["inputs_succeeded"]["values"] = {k: repr(v) for k, v in inputs.items()}

        outputs = step(results, "outputs_succeeded", lambda: ok_run.outputs())
        if outputs is not None:
            results["outputs_succeeded"].update(
                values=[repr(v) for v in outputs],
                named={k: repr(v) for k, v in outputs.named_outputs.items()},
            )

    # The failing run: wait reaches FAILED and the error is there.
    bad_run = step(results, "get_failed", lambda: Run.get(failed))
    if bad_run is not None:
        step(results, "wait_failed", lambda: bad_run.wait(quiet=True))
        results["wait_failed"].update(phase=bad_run.phase.value, done=bad_run.done())
        details = step(results, "details_failed", lambda: bad_run.details())
        if details is not None:
            error = details.action_details.error_info
            results["details_failed"]["error"] = error.message if error is not None else None

    # listall with a limit smaller than the number of runs.
    runs = step(results, "listall", lambda: list(Run.listall(limit=2)))
    if runs is not None:
        results["listall"]["names"] = [r.name for r in runs]
    everything = step(results, "listall_all", lambda: list(Run.listall(limit=100)))
    if everything is not None:
        results["listall_all"]["names"] = sorted(r.name for r in everything)
    in_phase = step(
        results, "listall_succeeded", lambda: list(Run.listall(in_phase=("succeeded",), limit=10))
    )
    if in_phase is not None:
        results["listall_succeeded"]["names"] = [r.name for r in in_phase]

    # Abort the long-running one, then wait for it to end.
    long_run = step(results, "get_running", lambda: Run.get(running))
    if long_run is not None:
        results["get_running"]["phase"] = long_run.phase.value
        step(results, "abort_running", lambda: long_run.abort(reason="aborted by the flyte SDK test"))
        step(results, "wait_running", lambda: long_run.wait(quiet=True))
        results["wait_running"].update(phase=long_run.phase.value, done=long_run.done())

    step(results, "get_missing", lambda: Run.get("rnosuchrun0"))

    results["status_seen"] = STATUS_SEEN
    results["auth_refreshes"] = AUTH_REFRESHES
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
