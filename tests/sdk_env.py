"""What the coexistence tests (``tests/test_sdk_*.py``) share: the flyte SDK installed beside
this package, a clean slate for both between tests, and the SDK's ``Run`` for a run of ours.

``scripts/test`` runs those tests in the environments that hold the public SDK (``.venv-sdk212``:
flyte 2.12.1; ``.venv-sdk``: flyte 2.0.x) with ``FRW_REQUIRE_SDK=1``, so there a missing SDK
fails instead of skipping; in the project's own environment (no SDK) they are skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flyteidl2.common import identifier_pb2
from flyteidl2.workflow import run_definition_pb2, run_service_pb2

import flyte_run_widget.client.rpc as client_mod


def require_flyte() -> Any:
    """The ``flyte`` module; skips the calling module where it is not installed (fails with
    FRW_REQUIRE_SDK=1)."""
    try:
        import flyte
    except ImportError:
        if os.environ.get("FRW_REQUIRE_SDK"):
            raise
        pytest.skip(
            "the flyte SDK is not installed here; scripts/test runs this in .venv-sdk212 and .venv-sdk",
            allow_module_level=True,
        )
    return flyte


def sdk_speaks_grpc(flyte: Any) -> bool:
    """flyte 2.0.x talks gRPC (and so reaches the embedded service); 2.1 and later Connect."""
    return str(flyte.__version__).startswith("2.0.")


@pytest.fixture
def clean_slate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Neither this package's client nor the SDK's configuration survives the test; an embedded
    service, if one is started, lives in the test's folder."""
    import flyte._initialize as sdk_init

    monkeypatch.setenv("FLYTE_RUN_WIDGET_DATA", str(tmp_path / "frw-data"))
    monkeypatch.setattr(client_mod, "_client", None)
    monkeypatch.setattr(client_mod, "_sdk_source", None)
    monkeypatch.setattr(sdk_init, "_init_config", None)
    yield
    if client_mod._client is not None and client_mod._client._channel is not None:
        from flyte_run_widget.client import loop as _loop

        _loop.submit(client_mod._client.close())
    info = tmp_path / "frw-data" / "server.json"
    if info.exists():  # an embedded service outlives its client on purpose: end it here
        _stop_child(int(json.loads(info.read_text())["pid"]))


def _stop_child(pid: int, timeout: float = 10) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)  # it is our child: reap it
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def sdk_run(flyte: Any, service_client: Any, name: str, project: str = "proj") -> Any:
    """The SDK's ``flyte.remote.Run`` for run ``name``, fetched by the SDK itself (gRPC for 2.0.x,
    Connect since 2.1: the service answers both on one port)."""
    return flyte.remote.Run.get(name)
    rid = identifier_pb2.RunIdentifier(project=project, domain="development", name=name)
    details = service_client.runs.GetRunDetails(run_service_pb2.GetRunDetailsRequest(run_id=rid), timeout=10)
    action = details.details.action
    pb2 = run_definition_pb2.Run(
        action=run_definition_pb2.Action(id=action.id, metadata=action.metadata, status=action.status)
    )
    return flyte.remote.Run(pb2=pb2)
