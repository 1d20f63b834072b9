"""The run name in the widget, clicked in JupyterLab, opens the embedded service's run page signed
in: the kernel hands the token over in a custom message, so the page shows the run's log without
asking for it, and the notebook saved afterwards holds no token. The kernel answers while another
cell blocks, too (notebook/kernel_events.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import LocalService  # tests/conftest.py

from .conftest import FRW, Lab, code_cell

pytestmark = pytest.mark.browser

STATE = "application/vnd.jupyter.widget-state+json"
TASK = """
def steps(n: int, until: str) -> int:
    import os, time
    for i in range(n):
        print(f"page step {i}", flush=True)
    while not os.path.exists(until):  # the test decides when the run ends
        time.sleep(0.05)
    return n
"""


def _rows_show(page: Any, text: str) -> None:
    page.wait_for_function(
        "(t) => [...document.querySelectorAll('.frw .frw-row')].some((r) => r.textContent.startsWith(t))",
        arg=text,
        timeout=30_000,
    )


def _open_page(lab: Lab, url: str, phase: str) -> None:
    """Click the run name; the page that opens shows the run and its log, signed in."""
    link = lab.page.query_selector(".frw .frw-name a")
    assert link is not None, "the run name is not a link"
    assert link.get_attribute("href") == url
    with lab.page.context.expect_page() as opened:
        link.click()
    tab = opened.value
    try:
        tab.wait_for_selector(f".frw .frw-badge[data-phase={phase}]", timeout=30_000)
        _rows_show(tab, "page step 29")
        assert tab.query_selector("form.frw-token") is None or not tab.is_visible("form.frw-token"), (
            "the page asks for the token"
        )
        # The page took the token out of the address bar.
        assert tab.url == url, tab.url
        assert tab.evaluate("() => window.opener") is None
    finally:
        tab.close()


@pytest.mark.parametrize("blocked", [False, True], ids=["idle-kernel", "cell-blocks"])
def test_click_on_the_run_name_opens_the_page_signed_in(lab: Lab, tmp_path: Path, blocked: bool) -> None:
    data = tmp_path / "data"
    until = tmp_path / "end-the-run"
    # The data folder's service, as init() finds it running (client/local_service.py), with the
    # token file it always has when init() starts it.
    service = LocalService(data, args=["--token-file", str(data / "service.token")])
    try:
        token = (data / "service.token").read_text().strip()
        assert token
        source = (
            "import flyte_run_widget as frw\n"
            f"cfg = frw.init(data_dir={str(data)!r}, project='proj', domain='development')\n"
            "assert cfg.embedded, cfg\n" + TASK + f"run = frw.run(steps, n=30, until={str(until)!r})\nrun\n"
        )
        # A plain sleep, not run.wait(): no pump serves the widget's messages there.
        cells = (
            [code_cell(source), code_cell("import time\ntime.sleep(600)")] if blocked else [code_cell(source)]
        )
        nb = lab.write_notebook(f"page_link_{blocked}", cells)
        lab.open(nb)
        lab.run_all()
        lab.page.wait_for_selector(FRW, timeout=30_000)
        lab.wait_for_phase("running", 60)
        _rows_show(lab.page, "page step 29")
        name = lab.run_name()
        url = f"http://{service.endpoint}/v2/domain/development/project/proj/runs/{name}"
        if blocked:
            lab.wait_for(
                lambda: lab.execution_counts() == [1, None],
                "cell 2 to block ({})",
                30,
                detail=lab.execution_counts,
            )
            _open_page(lab, url, "running")
            return
        until.touch()
        lab.wait_for_phase("succeeded", 60)
        _open_page(lab, url, "succeeded")

        lab.save()
        raw = (lab.server.root / nb).read_text()
        state = json.loads(raw)["metadata"].get("widgets", {}).get(STATE)
        assert state and name in json.dumps(state), "no widget state was saved: the check would be empty"
        assert token not in raw, "the saved notebook holds the service's token"
    finally:
        until.touch()
        lab.server.shutdown_kernels()
        service.stop()
