"""A device login in JupyterLab against ``serve --auth``: the cell that needs a token shows the
sign-in panel (the verification link and the user code), the service's owner approves the code with
``flyte-run-widget auth approve``, and the run's widget shows; the saved notebook holds no token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from auth_client_support import AuthService, auth_service_fixture  # noqa: F401 (a fixture)

from .conftest import BADGE, Lab, code_cell

pytestmark = pytest.mark.browser

PANEL = ".frw-signin"
CODE = ".frw-signin .frw-signin-code"
LINK = ".frw-signin a.frw-signin-link"

CELL = """
import flyte_run_widget as frw
frw.init(config_file={config!r})

def hello(n: int) -> int:
    print("hello after signing in", n, flush=True)
    return n

run = frw.run(hello, n=7)   # needs a token: the device login starts here
run
"""


def test_device_login_panel_then_the_run(lab: Lab, auth_service: AuthService, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"admin:\n  endpoint: dns:///{auth_service.endpoint}\n  authType: DeviceFlow\n"
        f"  caCertFilePath: {auth_service.cert}\ntask:\n  project: proj\n  domain: development\n"
    )
    nb = lab.write_notebook("signin", [code_cell(CELL.format(config=str(config)).strip() + "\n")])
    lab.open(nb)
    lab.run_all()

    visible_code = lambda: lab.page.eval_on_selector_all(  # noqa: E731
        CODE, "(els) => els.filter((e) => !e.closest('[hidden]')).map((e) => e.textContent)"
    )
    lab.wait_for(lambda: len(visible_code()) == 1 and visible_code()[0], "the sign-in panel with a code", 60)
    code = visible_code()[0]
    link = lab.page.eval_on_selector(LINK, "(a) => [a.href, a.target, a.rel]")
    assert link[0].startswith("https://") and code in link[0], link
    assert link[1:] == ["_blank", "noopener noreferrer"]
    lab.screenshot("panel")
    assert lab.page.query_selector_all(BADGE) == [], "the run showed before the login was approved"

    approved = auth_service.cli("auth", "approve", code)
    assert "approved" in approved

    phases = lambda: lab.page.eval_on_selector_all(BADGE, "(els) => els.map((e) => e.dataset.phase)")  # noqa: E731
    lab.wait_for(lambda: phases() == ["succeeded"], "the run to show and succeed ({})", 90, detail=phases)
    lab.wait_for(
        lambda: lab.page.eval_on_selector_all(PANEL, "(els) => els.every((e) => e.closest('[hidden]'))"),
        "the sign-in panel to go once approved",
        30,
    )
    lab.screenshot("run")
    rows = "\n".join(lab.page.eval_on_selector_all(".frw .frw-row", "(els) => els.map((e) => e.textContent)"))
    lab.wait_for(
        lambda: (
            "hello after signing in 7"
            in "\n".join(
                lab.page.eval_on_selector_all(".frw .frw-row", "(els) => els.map((e) => e.textContent)")
            )
        ),
        "the task's line in the widget ({})",
        30,
        detail=lambda: rows,
    )

    lab.save()
    saved = (lab.server.root / nb).read_text()
    assert json.loads(saved)["metadata"].get("widgets"), "no widget state was saved"
    kernel = lab.page.evaluate("() => document.body.textContent")
    for text in (saved, kernel):
        assert "Bearer" not in text and "device_code" not in text
