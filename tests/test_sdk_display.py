"""The SDK's own ``flyte.remote.Run`` and ``Action`` as the live widget in an IPython shell: as
the last expression of a cell and through ``display()``; its buttons act on the run through this
package's client, configured from ``flyte.init``. Local runs and the switch keep the SDK's text."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ServiceClient, python_task
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from run_support import wait_until
from sdk_env import clean_slate, require_flyte, sdk_run

import flyte_run_widget as frw
from flyte_run_widget.client.rpc import get_client
from flyte_run_widget.notebook import sdk_display

flyte = require_flyte()
pytestmark = pytest.mark.usefixtures("clean_slate")
__all__ = ["clean_slate"]  # a fixture, used by name

VIEW = "application/vnd.jupyter.widget-view+json"
PRINTS = """
import time
for i in range({n}):
    print(f"sdk line {{i}}", flush=True)
    time.sleep({delay})
"""


@pytest.fixture
def shell() -> Any:
    ip = InteractiveShell.instance()
    frw.display_sdk_runs(True)  # the import registered them only if a shell existed then
    yield ip
    frw.display_sdk_runs(False)


@pytest.fixture
def sdk(service) -> Any:
    flyte.init(endpoint=service.endpoint, insecure=True, project="proj", domain="development")
    c = ServiceClient(service.endpoint)
    yield c
    c.close()


def _last_expression(ip: Any, value: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The mime bundle IPython's display hook sends for a cell that ends in ``value``."""
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(ip.displayhook, "write_format_data", lambda data, md=None: sent.append(data))
    ip.user_ns["value"] = value
    result = ip.run_cell("value", store_history=False)
    assert result.success, result.error_in_exec
    assert len(sent) == 1
    return sent[0]


def _displayed(value: Any) -> dict[str, Any]:
    """The mime bundle ``display(value)`` publishes."""
    from IPython.display import display

    with capture_output() as captured:
        display(value)
    assert len(captured.outputs) == 1
    return dict(captured.outputs[0].data)


def test_run_as_last_expression_is_the_widget_and_abort_aborts(shell, sdk, service, monkeypatch) -> None:
    created = sdk.create(python_task(PRINTS.format(n=2000, delay=0.02)))
    run = sdk_run(flyte, sdk, created.action.id.run.name)
    assert type(run).__module__ == "flyte.remote._run"

    bundle = _last_expression(shell, run, monkeypatch)
    widget = sdk_display.widget_for(run)
    assert bundle[VIEW]["model_id"] == widget.model_id
    assert widget.run_name == run.name
    # Shown again (display()): a second view of the same widget.
    assert _displayed(run)[VIEW]["model_id"] == widget.model_id
    # The client it acts through is the one flyte.init configured.
    assert get_client().config.endpoint.target == service.endpoint

    log = widget._logs
    assert wait_until(lambda: widget.phase == "running" and 1 in log and log[1].total > 5)
    widget._on_frontend_msg(widget, {"type": "abort", "reason": "clicked"}, [])
    assert wait_until(lambda: widget.phase == "aborted")
    assert frw.Run.get(run.name).phase == "aborted"


def test_action_through_display_is_the_widget_and_shows_outputs(shell, sdk) -> None:
    ran = frw.run(_triple, x=14)  # no frw.init(): the SDK's settings
    run = sdk_run(flyte, sdk, ran.name)
    action = run.action
    assert type(action).__module__ == "flyte.remote._action"

    bundle = _displayed(action)
    widget = sdk_display.widget_for(action)
    assert bundle[VIEW]["model_id"] == widget.model_id
    assert wait_until(lambda: widget.phase == "succeeded" and widget.outputs)
    assert widget.outputs == "o0 = 42"


def test_local_runs_and_the_switch_keep_the_sdk_text(shell, sdk, monkeypatch) -> None:
    created = sdk.create(python_task("print('x')"))
    run = sdk_run(flyte, sdk, created.action.id.run.name)

    class LocalRun(type(run)):  # what flyte.run makes without a cluster: a subclass
        pass

    local = LocalRun(pb2=run.pb2)
    assert VIEW not in _last_expression(shell, local, monkeypatch)

    frw.display_sdk_runs(False)
    bundle = _displayed(run)
    assert VIEW not in bundle and bundle["text/plain"] == repr(run)
    frw.display_sdk_runs(True)
    assert VIEW in _displayed(run)


def _triple(x: int) -> int:
    return 3 * x
