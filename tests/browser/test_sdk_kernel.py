"""The flyte SDK's own Run in JupyterLab, in a kernel whose environment holds the public SDK and
this package (made by one pip install of both, as a Flyte user's would be), against the
embedded service: ``flyte.init(endpoint=..., insecure=True)``, then the SDK's Run as the last
expression of a cell and its Action through ``display()`` render our widget, which streams the
log; Abort in the widget aborts the run in the service.

flyte 2.12.1 (``FRW_SDK212_PYTHON``, ``.venv-sdk212``) fetches the run itself with
``flyte.remote.Run.get(name)`` over Connect; the widget's client reads the endpoint and project
from the SDK and talks to the same port.
"""

from __future__ import annotations

import os

import pytest
from conftest import ServiceClient, python_task  # tests/conftest.py: a raw client, task specs

from .conftest import FRW, Lab, code_cell

pytestmark = pytest.mark.browser

# flyte 2.0.x pins a flyteidl2 this package cannot run on (no Connect services, no data proxy):
# it has no kernel of its own here (README, "Beside the Flyte SDK").
SDK_PYTHONS = {"flyte-2.12.1": "FRW_SDK212_PYTHON"}

PRINTS = """
import time
for i in range(3000):
    print(f"sdk kernel line {i}", flush=True)
    time.sleep(0.05)
"""

GET = "run = flyte.remote.Run.get({name!r})\nrun\n"


def _sdk_python(sdk: str) -> str:
    var = SDK_PYTHONS[sdk]
    python = os.environ.get(var, "")
    if not python:
        if os.environ.get("FRW_REQUIRE_SDK"):
            pytest.fail(f"{var} is not set; scripts/test sets it to the {sdk} environment")
        pytest.skip(f"{var} is not set: the python of an environment with {sdk} and this package")
    return python


def _service_phase(service_client: ServiceClient, name: str) -> str:
    from flyteidl2.common import identifier_pb2
    from flyteidl2.workflow import run_service_pb2

    from flyte_run_widget.common.phase import friendly_phase

    rid = identifier_pb2.RunIdentifier(project="proj", domain="development", name=name)
    resp = service_client.runs.GetRunDetails(run_service_pb2.GetRunDetailsRequest(run_id=rid), timeout=10)
    return friendly_phase(resp.details.action.status.phase)


@pytest.mark.parametrize("sdk", sorted(SDK_PYTHONS))
def test_sdk_run_in_an_sdk_kernel_streams_and_aborts(lab: Lab, service, sdk: str) -> None:
    kernel = lab.server.add_kernel(f"frw-{sdk}", _sdk_python(sdk))
    client = ServiceClient(service.endpoint)
    try:
        name = client.create(python_task(PRINTS)).action.id.run.name
        setup = (
            "import flyte\nimport flyte_run_widget as frw\n"
            "from flyte_run_widget.client.rpc import get_client\n"
            f"flyte.init(endpoint={service.endpoint!r}, insecure=True,"
            " project='proj', domain='development')\n"
            "print('flyte', flyte.__version__, '| widget client:', get_client().config.source)\n"
        )
        get = GET.format(name=name)
        cells = [code_cell(setup), code_cell(get), code_cell("display(run.action)")]
        lab.open(lab.write_notebook(f"sdk_kernel_{sdk}", cells, kernel=kernel))
        lab.run_all()

        lab.wait_for(
            lambda: len(lab.page.query_selector_all(FRW)) == 2,
            "two widgets: the Run (last expression) and its Action (display()) (found {})",
            60,
            detail=lambda: len(lab.page.query_selector_all(FRW)),
        )
        first_output = lab.page.inner_text(".jp-Notebook .jp-Cell:nth-child(1) .jp-OutputArea")
        version = "flyte 2.0." if sdk == "flyte-2.0" else "flyte 2.12.1"
        assert version in first_output and "the flyte SDK's settings" in first_output, first_output
        names = [el.inner_text().strip() for el in lab.page.query_selector_all(".frw .frw-name")]
        assert names == [name, name], names

        lab.wait_for_phase("running", 60)
        counts = [lab.line_count()]
        lab.wait_for(
            lambda: counts.append(lab.line_count()) or counts[-1] > max(counts[0], 3),
            "the log to stream into the widget (counts {})",
            60,
            detail=lambda: counts[-5:],
        )
        assert any(r.startswith("sdk kernel line") for r in lab.row_texts()), lab.row_texts()[-3:]
        lab.screenshot(f"{sdk}-running")

        lab.abort_via_ui()
        lab.wait_for(
            lambda: _service_phase(client, name) == "aborted",
            f"run {name} to be ABORTED in the service (it is {{}})",
            30,
            interval=0.2,
            detail=lambda: _service_phase(client, name),
        )
        lab.wait_for(
            lambda: (
                [b.get_attribute("data-phase") for b in lab.page.query_selector_all(".frw .frw-badge")]
                == ["aborted", "aborted"]
            ),
            "both widgets to show ABORTED",
            30,
        )
        lab.screenshot(f"{sdk}-aborted")
    finally:
        client.close()
