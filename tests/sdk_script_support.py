"""What the scripts that drive the public ``flyte`` SDK share (``sdk_client.py``, ``sdk212_client.py``,
``sdk212_auth_client.py``). They run in the SDK's own interpreter with this folder first on the
path, so this module needs nothing but the standard library, and imports flyte only when asked.
"""

from __future__ import annotations

import time
import traceback
from typing import Any


def record_errors(error: type[BaseException], seen: list[str], *, message: bool = False) -> None:
    """Append the status code of every ``error`` made from now on to ``seen`` (with its message,
    ``CODE: message``, when ``message``): what the SDK saw, even where it swallowed the error."""
    init = error.__init__

    def recording_init(self: Any, code: Any, *args: Any, **kwargs: Any) -> None:
        seen.append(f"{code.name}: {args[0] if args else ''}" if message else code.name)
        init(self, code, *args, **kwargs)

    error.__init__ = recording_init  # type: ignore[method-assign]


def refuse_sign_in(refreshes: list[str]) -> None:
    """Make the SDK's attempts to (re)authenticate fail, named in ``refreshes``: it tries on
    UNAUTHENTICATED (flyte 2.0 on UNKNOWN too), and the local service must never make it."""
    from flyte.remote._client.auth._authenticators import base

    async def refresh_credentials(self: Any, creds_id: str | None = None) -> None:
        refreshes.append(type(self).__name__)
        raise RuntimeError("the SDK tried to authenticate against the local Run service")

    base.Authenticator.refresh_credentials = refresh_credentials  # type: ignore[method-assign]


def step(results: dict[str, Any], name: str, fn: Any, calls: list[str] | None = None) -> Any:
    """Run one SDK call; record its result or the error it raised, how long it took and, given
    the list the script records RPCs in, the RPCs it made."""
    started = time.monotonic()
    first_call = len(calls) if calls is not None else 0
    try:
        value = fn()
    except BaseException as exc:  # report everything, SystemExit included
        record: dict[str, Any] = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
        value = None
    else:
        record = {"ok": True}
    record["seconds"] = round(time.monotonic() - started, 3)
    if calls is not None:
        record["calls"] = calls[first_call:]
    results[name] = record
    return value
