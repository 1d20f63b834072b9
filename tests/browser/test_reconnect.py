"""The widget in a real Chromium rides out a SIGKILL of the Run service and its restart: the
banner says it is reconnecting, then the widget converges (SUCCEEDED, banner gone) and its log
view holds every line once, in order, although the task kept printing while no service ran.

The log is read through the view's Download button: the text of the lines the view shows, built
from the page's own buffer, not from the kernel."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .conftest import FRW, Lab, code_cell, setup_cell

pytestmark = pytest.mark.browser

BANNER = ".frw .frw-banner:not(.frw-notice)"  # js/src/panels.js createBanner
SYSTEM_TOGGLE = ".frw .frw-logbar label.frw-toggle:has-text('System lines') input"
DOWNLOAD = ".frw .frw-logbar button:has-text('Download')"

N = 120
DELAY = 0.1  # ~12 s of steady output
DOWN_FOR = 3.0  # seconds from the kill to the restart

COUNT = """
def count(n: int, delay: float) -> int:
    import time
    for i in range(n):
        print(f"line {i}", flush=True)
        time.sleep(delay)
    return n
"""


def banner(lab: Lab) -> dict[str, object]:
    """The connection banner as the page shows it: visible?, its classes and its text."""
    return dict(
        lab.page.eval_on_selector(
            BANNER,
            """(el) => ({
                visible: el.offsetParent !== null && getComputedStyle(el).display !== 'none',
                reconnecting: el.classList.contains('frw-reconnecting'),
                text: el.textContent,
            })""",
        )
    )


def user_rows(lab: Lab) -> list[str]:
    return [r for r in lab.row_texts() if r.startswith("line ")]


def downloaded_lines(lab: Lab, tmp_path: Path) -> list[str]:
    """The log view's lines through its Download button: the lines it shows (filter and toggles
    applied), read from the page's buffer, not from the kernel."""
    with lab.page.expect_download(timeout=20_000) as info:
        lab.page.click(DOWNLOAD)
    path = tmp_path / "view.log"
    info.value.save_as(path)
    return path.read_text().splitlines()


def test_widget_rides_out_a_service_kill_and_restart(lab: Lab, fixed_service, tmp_path: Path) -> None:
    source = setup_cell(fixed_service.endpoint) + COUNT + f"run = frw.run(count, n={N}, delay={DELAY})\nrun\n"
    nb = lab.write_notebook("reconnect", [code_cell(source)])
    lab.open(nb)
    lab.run_all()
    lab.page.wait_for_selector(FRW, timeout=30_000)
    lab.wait_for_phase("running", 60)
    lab.wait_for(
        lambda: len(user_rows(lab)) > 5,
        "some log lines before the kill (rows {})",
        30,
        detail=lambda: lab.row_texts()[-5:],
    )
    assert not banner(lab)["visible"], f"a banner before the kill: {banner(lab)}"
    lab.screenshot("before-kill")

    fixed_service.kill()  # SIGKILL: no goodbye to the streams
    killed = time.monotonic()
    shown_at_kill = user_rows(lab)
    lab.wait_for(
        lambda: banner(lab)["visible"] and banner(lab)["reconnecting"],
        "the banner to say the widget is reconnecting ({})",
        15,
        detail=lambda: banner(lab),
    )
    down = banner(lab)
    assert str(down["text"]).startswith("Reconnecting…"), down
    lab.screenshot("reconnecting")
    # The task keeps printing while no service runs; the widget keeps retrying with backoff
    # (it gives up only after ~8 s of failures, see flyte_run_widget/client/streams.py). ~3 s down
    # puts the two streams (run state and log) on different backoff steps, so one of them
    # reconnects while the other is still failing: the case where a reconnect used to close the
    # shared channel under the other stream, which then died and left the badge at RUNNING.
    lab.page.wait_for_timeout(max(0.0, DOWN_FOR - (time.monotonic() - killed)) * 1000)
    assert banner(lab)["reconnecting"], f"the widget stopped reconnecting: {banner(lab)}"
    assert lab.phase() == "running", f"the badge changed while the service was down: {lab.phase()}"

    fixed_service.start()  # same data folder and port: the live task is adopted
    restarted = time.monotonic() - killed
    lab.wait_for(
        lambda: not banner(lab)["visible"],
        f"the reconnecting banner to go away after the restart (service back {restarted:.1f} s after "
        "the kill; banner {})",
        30,
        detail=lambda: banner(lab),
    )
    lab.wait_for_phase("succeeded", 60)
    lab.wait_for(
        lambda: "complete" in lab.count_text(), "the log to be complete ({})", 20, detail=lab.count_text
    )
    # Converged: no banner comes back once the run has ended.
    lab.page.wait_for_timeout(500)
    final = banner(lab)
    assert not final["visible"] and not final["reconnecting"], f"banner after converging: {final}"
    assert lab.phase() == "succeeded"

    expected = [f"line {i}" for i in range(N)]
    # The kill happened mid-run: the view held some lines, not all.
    assert shown_at_kill and shown_at_kill[-1] != expected[-1], shown_at_kill[-3:]

    # Every line the log view holds, through its Download button.
    lines = downloaded_lines(lab, tmp_path)
    user = [x for x in lines if x.startswith("line ")]
    missing = sorted(set(expected) - set(user), key=lambda s: int(s.split()[1]))
    repeated = sorted({x for x in user if user.count(x) > 1})
    assert user == expected, (
        f"the log view after the restart: {len(user)} user lines, missing {missing[:10]}, "
        f"repeated {repeated[:10]}, first {user[:3]}, last {user[-3:]}"
    )
    system = [x for x in lines if not x.startswith("line ")]
    assert any("followed again" in x for x in system), f"no adoption line from the service: {system}"

    # The rows on screen, system lines hidden, are the tail of that same log, in order.
    lab.page.uncheck(SYSTEM_TOGGLE)
    lab.wait_for(
        lambda: (rows := lab.row_texts()) and all(r.startswith("line ") for r in rows),
        "the rows to show user lines only ({})",
        10,
        detail=lambda: lab.row_texts()[-5:],
    )
    lab.screenshot("converged")
    rows = lab.row_texts()
    assert rows == expected[-len(rows) :], f"rows on screen: {rows[:3]} … {rows[-3:]}"
    assert lab.count_text().startswith(f"{N} of "), lab.count_text()
