"""Sign the public ``flyte`` SDK 2.12.1 in to a Run service started with ``serve --auth``, then
read a run; print one JSON object (the last line on stdout). Run by tests/test_sdk212_auth.py
with the SDK's own interpreter, never with the project's:

    FLYTE_API_KEY=... python tests/sdk212_auth_client.py key RUN [GATE]
    python tests/sdk212_auth_client.py config CONFIG.yaml RUN [GATE]

``key`` signs in with ``flyte.init_from_api_key()`` (the key from $FLYTE_API_KEY), ``config``
with ``flyte.init_from_config`` (e.g. ``admin.authType: DeviceFlow``). With GATE, after the first
calls the script prints ``WAITING`` and waits (at most 60 s) for the file GATE, then calls again:
the test changes the service's side in between (deletes the key).

Nothing here is patched: the SDK finds the token endpoint through AuthMetadataService and sends
the token in the header discovery names, as against any Flyte cluster. The only hook counts the
token requests the SDK makes (httpx is how it talks to the token endpoint).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import httpx
from connectrpc import errors
from sdk_script_support import record_errors, step

TOKEN_REQUESTS: list[int] = []
_post = httpx.AsyncClient.post


async def _counting_post(self: httpx.AsyncClient, url: Any, *args: Any, **kwargs: Any) -> httpx.Response:
    response = await _post(self, url, *args, **kwargs)
    if str(url).endswith("/oauth2/token"):
        TOKEN_REQUESTS.append(response.status_code)
    return response


httpx.AsyncClient.post = _counting_post  # type: ignore[method-assign]

CODES_SEEN: list[str] = []
record_errors(errors.ConnectError, CODES_SEEN, message=True)


def read(results: dict[str, Any], run_name: str, suffix: str = "") -> None:
    from flyte.remote import Run

    listed = step(results, "listall" + suffix, lambda: list(Run.listall(limit=100)))
    if listed is not None:
        results["listall" + suffix]["names"] = sorted(r.name for r in listed)
    run = step(results, "get" + suffix, lambda: Run.get(run_name))
    if run is not None:
        results["get" + suffix]["phase"] = run.phase.value
        lines = step(results, "get_logs" + suffix, lambda: list(run.get_logs(filter_system=True)))
        if lines is not None:
            results["get_logs" + suffix]["lines"] = lines


def main() -> int:
    mode, *args = sys.argv[1:]
    import flyte

    results: dict[str, Any] = {"flyte_version": flyte.__version__}
    if mode == "key":
        run_name, *gate = args
        step(results, "init", lambda: flyte.init_from_api_key(project="authproj", domain="development"))
    else:
        config, run_name, *gate = args
        step(results, "init", lambda: flyte.init_from_config(config))
    if results["init"]["ok"]:
        read(results, run_name)
        if gate:
            print("WAITING", flush=True)
            deadline = time.monotonic() + 60
            while not os.path.exists(gate[0]) and time.monotonic() < deadline:
                time.sleep(0.05)
            read(results, run_name, "_after")
    results["token_requests"] = TOKEN_REQUESTS
    results["codes_seen"] = CODES_SEEN
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
