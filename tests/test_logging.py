"""The package logger: silent unless the application configures logging; reconnects, giving up
and swallowed errors are recorded at their levels."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FixedPortService, ServiceClient, python_task
from flyteidl2.common import identifier_pb2 as ids
from run_support import wait_until

import flyte_run_widget as frw
from flyte_run_widget import errors
from flyte_run_widget.client import loop as _loop
from flyte_run_widget.client import streams
from flyte_run_widget.client.rpc import get_client
from flyte_run_widget.notebook.widget import RunWidget

REPO = Path(__file__).resolve().parents[1]

COUNTER = (
    "import sys, time\n"
    "for i in range(int(sys.argv[1])):\n"
    "    print('line', i, flush=True)\n"
    "    time.sleep(0.05)\n"
)


def _records(caplog: pytest.LogCaptureFixture, name: str, level: int, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == name and r.levelno == level and text in r.getMessage()]


def test_the_package_is_silent_unless_logging_is_configured() -> None:
    # Without a handler on the package logger, Python's last-resort handler would print
    # warnings and errors to stderr, i.e. into a notebook cell.
    code = (
        "import logging, flyte_run_widget\n"
        "logging.getLogger('flyte_run_widget.client.streams').error('should not be printed')\n"
        "logging.getLogger('flyte_run_widget.notebook.widget').warning('nor this')\n"
    )
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stderr == "" and out.stdout == ""
    handlers = logging.getLogger("flyte_run_widget").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_a_widget_riding_out_a_restart_logs_the_reconnect(
    fixed_service: FixedPortService, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="flyte_run_widget")
    monkeypatch.setattr(streams, "BACKOFF_START", 0.05)
    frw.init(fixed_service.endpoint, project="proj", domain="development")
    client = ServiceClient(fixed_service.endpoint)
    run = client.create(python_task(COUNTER, "100"))
    client.close()
    w = RunWidget(frw.Run.get(run.action.id.run.name))
    try:
        assert wait_until(lambda: w._logs.get(1) is not None and w._logs[1].total >= 5)
        fixed_service.kill()
        assert wait_until(lambda: w.connection["state"] == "reconnecting")
        fixed_service.start()
        assert wait_until(lambda: w.phase == "succeeded" and w.connection["state"] == "connected", 60)
    finally:
        w.close()
    name = run.action.id.run.name
    dropped = _records(caplog, "flyte_run_widget.client.streams", logging.WARNING, "reconnecting in")
    assert any(f"run {name!r}" in r.getMessage() for r in dropped), caplog.text
    back = _records(caplog, "flyte_run_widget.client.streams", logging.INFO, "reconnected")
    assert any(f"run {name!r}" in r.getMessage() for r in back), caplog.text


def test_giving_up_is_an_error(
    fixed_service: FixedPortService, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG, logger="flyte_run_widget")
    monkeypatch.setattr(streams, "BACKOFF_START", 0.05)
    frw.init(fixed_service.endpoint, project="proj", domain="development")
    fixed_service.kill()
    action = ids.ActionIdentifier(
        run=ids.RunIdentifier(project="proj", domain="development", name="gone"), name="a0"
    )

    async def follow() -> None:
        async for _ in streams.follow_action(get_client(), action, patience=2):
            pass

    with pytest.raises(errors.ServiceUnavailableError):
        _loop.submit(asyncio.wait_for(follow(), 60)).result()
    gave_up = _records(
        caplog, "flyte_run_widget.client.streams", logging.ERROR, "giving up after 2 failed attempts"
    )
    assert len(gave_up) == 1, caplog.text
    # The reconnect attempt in between failed too: swallowed, so it is logged (as detail).
    assert _records(caplog, "flyte_run_widget.client.streams", logging.DEBUG, "reconnect failed"), caplog.text
