"""Hostile log text in a real Chromium: inert, nothing leaves the page, the view stays responsive."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from .conftest import BADGE, COUNT, FRW, Lab, code_cell, setup_cell

pytestmark = pytest.mark.browser

# Raw bytes straight to stdout: NUL, invalid UTF-8, an OSC-8 link to javascript:, an ANSI bomb,
# a 10 MB line, markup in the task name; markers around each let the test find them as text.
HOSTILE = r"""
import sys
def hostile() -> str:
    out = sys.stdout.buffer
    out.write(b"before-nul \x00 after-nul\n")
    out.write(b"bad-utf8 \xff\xfe\xc3 end-bad-utf8\n")
    out.write(b"\x1b]8;;javascript:alert(7)\x1b\\click-me\x1b]8;;\x1b\\ osc-link-end\n")
    out.write(b"bomb " + b"\x1b[31m\x1b[1m\x1b[42m" * 100_000 + b"bomb-end\n")
    out.write(b"big " + b"A" * (10 * 1024 * 1024) + b" big-end\n")
    out.write(b"<a href='javascript:alert(8)'>js-link</a> <img src=http://example.invalid/x.png>\n")
    out.write(b"<script>alert(12)</script> script-end <svg onload=alert(13)>\n")
    out.write(b"last-line\n")
    out.flush()
    return "done"
task = frw.task(hostile, name="<img src=x onerror=alert(9)>")
run = frw.run(task)
run
"""

# A task whose error message is markup: the widget's error panel shows it as text.
FAILING = r"""
def failing() -> None:
    raise ValueError("<script>alert(10)</script><img src=x onerror=alert(11)> err-end")
bad = frw.run(frw.task(failing, name="failing"))
bad
"""


ERROR_TEXT = "() => [...document.querySelectorAll('.frw')].map((e) => e.innerText).join('\\n')"


def test_hostile_log_text_is_inert_and_the_view_stays_responsive(lab: Lab, service) -> None:
    origin = urlsplit(lab.server.url)
    foreign: list[str] = []

    def on_request(request) -> None:
        url = urlsplit(request.url)
        if url.scheme in ("data", "blob", "about"):
            return
        if (url.hostname, url.port) != (origin.hostname, origin.port):
            foreign.append(request.url)

    lab.page.on("request", on_request)
    cells = [code_cell(setup_cell(service.endpoint) + HOSTILE), code_cell(FAILING)]
    nb = lab.write_notebook("hostile_text", cells)
    lab.open(nb)
    lab.run_all()
    lab.page.wait_for_selector(FRW, timeout=30_000)
    lab.wait_for(lambda: lab.phase() == "succeeded", "the run to succeed (phase {})", 90, detail=lab.phase)
    lab.wait_for(
        lambda: "complete" in lab.count_text(), "the log to be complete ({})", 60, detail=lab.count_text
    )
    # Responsive after the 10 MB line and the ANSI bomb: an animation frame comes back quickly.
    frame_ms = lab.page.evaluate(
        "() => new Promise((ok) => { const t = performance.now();"
        " requestAnimationFrame(() => requestAnimationFrame(() => ok(performance.now() - t))) })"
    )
    assert frame_ms < 1000, f"two animation frames took {frame_ms:.0f} ms after the hostile lines"
    lab.page.fill(f"{FRW} .frw-filter", "-")  # the filter runs over every held line, big one included
    lab.page.wait_for_timeout(1500)
    text = lab.page.eval_on_selector(FRW, "(e) => e.innerText")
    lab.page.fill(f"{FRW} .frw-filter", "")
    lab.wait_for(
        lambda: "err-end" in lab.page.evaluate(ERROR_TEXT),
        "the failed run's error to be shown ({})",
        90,
        detail=lambda: lab.page.evaluate(ERROR_TEXT)[-300:],
    )
    assert "<script>alert(10)</script><img src=x onerror=alert(11)> err-end" in lab.page.evaluate(ERROR_TEXT)
    for marker in ("after-nul", "end-bad-utf8", "osc-link-end", "js-link", "script-end"):
        assert marker in text or marker in "\n".join(lab.row_texts()), f"{marker!r} not shown as text"
    assert "<img src=x onerror=alert(9)>" in lab.page.eval_on_selector(FRW, "(e) => e.innerText")
    hrefs = lab.page.eval_on_selector_all(f"{FRW} a", "(els) => els.map((a) => a.getAttribute('href'))")
    assert all(h and h.startswith(("http://", "https://")) for h in hrefs), f"non-http links: {hrefs}"
    injected = lab.page.eval_on_selector_all(
        ".frw img, .frw script, .frw iframe, .frw [onerror], .frw [onload], .frw svg",
        "(els) => els.map((e) => e.outerHTML)",
    )
    shot = lab.screenshot("hostile")
    assert injected == [], f"elements injected into the widget: {injected}; screenshot {shot}"
    assert lab.dialogs == [], f"a script ran: {lab.dialogs}; screenshot {shot}"
    assert foreign == [], f"requests left the page: {foreign}; screenshot {shot}"
    assert lab.page.eval_on_selector(BADGE, "(e) => e.dataset.phase") == "succeeded"
    assert "complete" in lab.page.eval_on_selector(COUNT, "(e) => e.textContent")
