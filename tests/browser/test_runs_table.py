"""The runs table in JupyterLab against the real service: it appears with the project's runs,
follows new runs and phase changes live, a click opens the run's widget below it, selected runs
abort together after one confirm, and hostile task names stay text."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import flyte_run_widget as frw

from .conftest import Lab, code_cell, setup_cell

pytestmark = pytest.mark.browser

TABLE = ".frw.frwt"
HOSTILE = "<img src=x onerror=__pwned=1>"  # no dot: the table shows the short name


def quick(x: int) -> int:
    return x


def wait_for_file(path: str) -> int:
    while not os.path.exists(path):
        time.sleep(0.02)
    return 1


def phases_shown(lab: Lab) -> dict[str, str]:
    """Run name → phase of every row the table has in the DOM."""
    return dict(
        lab.page.eval_on_selector_all(
            f"{TABLE} .frwt-row",
            "(rows) => rows.map((r) => [r.dataset.name, r.querySelector('.frw-badge').dataset.phase])",
        )
    )


def service_phase(name: str) -> str:
    return frw.Run.get(name).phase


def test_runs_table_follows_opens_and_aborts(lab: Lab, service, tmp_path: Path) -> None:
    frw.init(service.endpoint, project="proj", domain="development")
    done = frw.run(frw.task(quick, name=HOSTILE), x=3)
    done.wait(quiet=True)
    gates = {k: tmp_path / k for k in ("a", "b", "c")}
    running = {k: frw.run(wait_for_file, path=str(g)) for k, g in gates.items()}
    for r in running.values():
        r.wait(quiet=True, wait_for="running")
    nb = lab.write_notebook("runs_table", [code_cell(setup_cell(service.endpoint) + "frw.runs()\n")])
    lab.open(nb)
    lab.run_all()
    lab.page.wait_for_selector(TABLE, timeout=30_000)
    a, b, c = (running[k].name for k in "abc")
    lab.wait_for(
        lambda: phases_shown(lab) == {done.name: "succeeded", a: "running", b: "running", c: "running"},
        "the four runs in the table ({})",
        30,
        detail=lambda: phases_shown(lab),
    )
    # Hostile task names are text.
    task_cell = lab.page.inner_text(f'{TABLE} .frwt-row[data-name="{done.name}"] .frwt-task')
    assert task_cell == HOSTILE
    assert lab.page.query_selector(f"{TABLE} img") is None
    assert lab.page.evaluate("() => window.__pwned") is None

    # Live: a new run appears and goes to SUCCEEDED; a gated run finishes.
    new = frw.run(quick, x=4)
    gates["a"].touch()
    lab.wait_for(
        lambda: phases_shown(lab).get(new.name) == "succeeded" and phases_shown(lab).get(a) == "succeeded",
        "the new run and run a to show SUCCEEDED ({})",
        30,
        detail=lambda: phases_shown(lab),
    )
    lab.screenshot("live")

    # A click on a row opens that run's widget below the table.
    lab.page.click(f'{TABLE} .frwt-row[data-name="{done.name}"] .frwt-duration')
    detail = ".jp-OutputArea .frw:not(.frwt)"
    lab.wait_for(
        lambda: (
            lab.page.inner_text(f"{detail} .frw-name").strip() == done.name
            and lab.page.get_attribute(f"{detail} .frw-badge", "data-phase") == "succeeded"
        ),
        "the run's widget below the table",
        30,
    )
    assert "o0 = 3" in lab.page.inner_text(f"{detail} .frw-outputs")

    # Select b and c, Abort selected, confirm once: both end ABORTED, nothing else does.
    for name in (b, c):
        lab.page.click(f'{TABLE} .frwt-row[data-name="{name}"] .frwt-check')
    assert lab.page.inner_text(f"{TABLE} .frwt-abort") == "Abort selected (2)"
    lab.page.click(f"{TABLE} .frwt-abort")
    assert lab.page.inner_text(f"{TABLE} .frwt-confirm .frw-confirm-q") == "Abort 2 runs?"
    lab.page.click(f"{TABLE} .frwt-confirm button.frw-danger")
    lab.wait_for(
        lambda: (service_phase(b), service_phase(c)) == ("aborted", "aborted"),
        "runs b and c to be ABORTED in the service ({})",
        30,
        detail=lambda: (service_phase(b), service_phase(c)),
    )
    lab.wait_for(
        lambda: phases_shown(lab).get(b) == phases_shown(lab).get(c) == "aborted",
        "the table to show b and c ABORTED ({})",
        30,
        detail=lambda: phases_shown(lab),
    )
    assert service_phase(a) == "succeeded" and service_phase(done.name) == "succeeded"
    lab.screenshot("aborted")
    assert not lab.page_errors, lab.page_errors
