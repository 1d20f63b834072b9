"""Drive the local Run service with the public ``flyte`` SDK 2.12.1 (Connect protocol) and print JSON.

Run by ``tests/test_sdk212_compat.py`` with the SDK's own interpreter (``FRW_SDK212_PYTHON``, an
environment with ``flyte==2.12.1``), never with the project's:

    python tests/sdk212_client.py ENDPOINT PROJECT DOMAIN GATE SUCCEEDED FAILED RUNNING

SUCCEEDED is running and finishes once the file GATE exists; the script creates it after
``Run.get`` so that ``wait()`` follows the run to its end.

The last line on stdout is one JSON object with what each SDK call returned, every RPC the SDK
made (``Service/Method``), every error code it saw and every credential refresh it attempted
(it refreshes, starting an OAuth flow, on UNAUTHENTICATED).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import sys
from typing import Any

import connectrpc
from connectrpc import errors
from connectrpc._client_async import ConnectClient
from sdk_script_support import record_errors, refuse_sign_in
from sdk_script_support import step as record_step

CODES_SEEN: list[str] = []
CALLS: list[str] = []
AUTH_REFRESHES: list[str] = []

record_errors(errors.ConnectError, CODES_SEEN)

_unary = ConnectClient.execute_unary
_stream = ConnectClient.execute_server_stream


async def _recording_unary(self: Any, *, request: Any, method: Any, **kwargs: Any) -> Any:
    CALLS.append(f"{method.service_name}/{method.name}")
    return await _unary(self, request=request, method=method, **kwargs)


def _recording_stream(self: Any, *, request: Any, method: Any, **kwargs: Any) -> Any:
    CALLS.append(f"{method.service_name}/{method.name}")
    return _stream(self, request=request, method=method, **kwargs)


ConnectClient.execute_unary = _recording_unary  # type: ignore[method-assign]
ConnectClient.execute_server_stream = _recording_stream  # type: ignore[method-assign]


# Every step records the RPCs it made.
step = functools.partial(record_step, calls=CALLS)


def main() -> int:
    endpoint, project, domain, gate, succeeded, failed, running = sys.argv[1:8]

    import flyte
    from flyte.remote import Action, Run

    refuse_sign_in(AUTH_REFRESHES)
    results: dict[str, Any] = {
        "flyte_version": flyte.__version__,
        "connectrpc_version": connectrpc.__version__,
    }
    flyte.init(endpoint=endpoint, insecure=True, project=project, domain=domain)

    ok_run = step(results, "get_succeeded", lambda: Run.get(succeeded))
    if ok_run is not None:
        results["get_succeeded"].update(name=ok_run.name, phase=ok_run.phase.value)
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
            step(results, "show_logs", lambda: ok_run.show_logs(raw=True, max_lines=100_000))
        results["show_logs"]["text"] = buffer.getvalue()
        lines = step(results, "get_logs", lambda: list(ok_run.get_logs(filter_system=True)))
        if lines is not None:
            results["get_logs"]["lines"] = lines

        inputs = step(results, "inputs", lambda: ok_run.inputs())
        if inputs is not None:
            results["inputs"]["values"] = {k: repr(v) for k, v in inputs.items()}
        outputs = step(results, "outputs", lambda: ok_run.outputs())
        if outputs is not None:
            results["outputs"]["named"] = {k: repr(v) for k, v in outputs.named_outputs.items()}

        actions = step(results, "action_listall", lambda: list(Action.listall(for_run_name=succeeded)))
        if actions is not None:
            results["action_listall"]["names"] = [a.name for a in actions]
            results["action_listall"]["phases"] = [a.phase.value for a in actions]

    bad_run = step(results, "get_failed", lambda: Run.get(failed))
    if bad_run is not None:
        step(results, "wait_failed", lambda: bad_run.wait(quiet=True))
        results["wait_failed"].update(phase=bad_run.phase.value, done=bad_run.done())

    listed = step(results, "listall_limit", lambda: list(Run.listall(limit=2)))
    if listed is not None:
        results["listall_limit"]["names"] = [r.name for r in listed]
    listed = step(results, "listall_all", lambda: list(Run.listall(limit=100)))
    if listed is not None:
        results["listall_all"]["names"] = sorted(r.name for r in listed)
    listed = step(results, "listall_succeeded", lambda: list(Run.listall(in_phase=("succeeded",))))
    if listed is not None:
        results["listall_succeeded"]["names"] = [r.name for r in listed]
    listed = step(results, "listall_two_phases", lambda: list(Run.listall(in_phase=("succeeded", "failed"))))
    if listed is not None:
        results["listall_two_phases"]["names"] = sorted(r.name for r in listed)
    listed = step(results, "listall_desc", lambda: list(Run.listall(sort_by=("created_at", "desc"))))
    if listed is not None:
        results["listall_desc"]["names"] = [r.name for r in listed]

    long_run = step(results, "get_running", lambda: Run.get(running))
    if long_run is not None:
        results["get_running"]["phase"] = long_run.phase.value
        step(results, "abort_running", lambda: long_run.abort(reason="aborted by the flyte 2.12 test"))
        step(results, "wait_running", lambda: long_run.wait(quiet=True))
        results["wait_running"].update(phase=long_run.phase.value, done=long_run.done())

    step(results, "get_missing", lambda: Run.get("rnosuchrun0"))

    results["codes_seen"] = CODES_SEEN
    results["calls"] = CALLS
    results["auth_refreshes"] = AUTH_REFRESHES
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
