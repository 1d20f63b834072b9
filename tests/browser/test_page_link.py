"""The run name in the widget, clicked in JupyterLab, opens the embedded service's run page signed
in: the kernel hands the token over in a custom message, so the page shows the run's log without
asking for it, and the notebook saved afterwards holds no token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import LocalService  # tests/conftest.py

from .conftest import FRW, Lab, code_cell

pytestmark = pytest.mark.browser

STATE = "application/vnd.jupyter.widget-state+json"
TASK = """
def steps(n: int) -> int:
    for i in range(n):
        print(f"page step {i}", flush=True)
    return n
"""


def test_click_on_the_run_name_opens_the_page_signed_in(lab: Lab, tmp_path: Path) -> None:
    data = tmp_path / "data"
    # The data folder's service, as init() finds it running (client/local_service.py), with the
    # token file it always has when init() starts it.
    service = LocalService(data, args=["--token-file", str(data / "service.token")])
    try:
        token = (data / "service.token").read_text().strip()
        assert token
        source = (
            "import flyte_run_widget as frw\n"
            f"cfg = frw.init(data_dir={str(data)!r}, project='proj', domain='development')\n"
            "assert cfg.embedded, cfg\n" + TASK + "run = frw.run(steps, n=30)\nrun\n"
        )
        nb = lab.write_notebook("page_link", [code_cell(source)])
        lab.open(nb)
        lab.run_all()
        lab.page.wait_for_selector(FRW, timeout=30_000)
        lab.wait_for_phase("succeeded", 60)
        lab.wait_for(
            lambda: "complete" in lab.count_text(), "the log to be complete ({})", 20, detail=lab.count_text
        )
        name = lab.run_name()
        link = lab.page.query_selector(".frw .frw-name a")
        assert link is not None, "the run name is not a link"
        url = link.get_attribute("href")
        assert url == f"http://{service.endpoint}/v2/domain/development/project/proj/runs/{name}"

        with lab.page.context.expect_page() as opened:
            link.click()
        tab = opened.value
        try:
            tab.wait_for_selector(".frw .frw-badge[data-phase=succeeded]", timeout=30_000)
            tab.wait_for_function(
                "() => [...document.querySelectorAll('.frw .frw-row')]"
                ".some((r) => r.textContent.startsWith('page step 29'))",
                timeout=30_000,
            )
            assert tab.query_selector("form.frw-token") is None or not tab.is_visible("form.frw-token"), (
                "the page asks for the token"
            )
            # The page took the token out of the address bar.
            assert tab.url == url, tab.url
            assert tab.evaluate("() => window.opener") is None
        finally:
            tab.close()

        lab.save()
        raw = (lab.server.root / nb).read_text()
        state = json.loads(raw)["metadata"].get("widgets", {}).get(STATE)
        assert state and name in json.dumps(state), "no widget state was saved: the check would be empty"
        assert token not in raw, "the saved notebook holds the service's token"
    finally:
        lab.server.shutdown_kernels()
        service.stop()
