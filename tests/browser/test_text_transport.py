"""The text transport (notebook/host.py, js/src/outbox.js), the fallback for Google Colab, forced
in JupyterLab: one run shown twice, once as usual (binary buffers, updates from the background
loop) and once with ``transport="text"``, where nothing reaches the page unless the page polls
and the kernel answers on its main thread. The text view must stream, reach the phase and end
with exactly the binary view's lines.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Lab, code_cell, setup_cell

pytestmark = pytest.mark.browser

WORK = """
def work(n: int, delay: float) -> int:
    import time
    for i in range(n):
        print(f"\\x1b[33mline\\x1b[0m {i} café 😀 <b>{i}</b>", flush=True)
        time.sleep(delay)
    return n

run = frw.run(work, n=400, delay=0.02)
frw.RunWidget(run, transport="binary")
"""


def widget(lab: Lab, n: int) -> Any:
    return lab.page.locator(".frw").nth(n)


def count(lab: Lab, n: int) -> str:
    return str(widget(lab, n).locator(".frw-count").inner_text())


def lines(lab: Lab, n: int) -> int:
    text = count(lab, n).split(" ")[0].replace(",", "")
    return int(text) if text.isdigit() else 0


def phase(lab: Lab, n: int) -> str | None:
    return widget(lab, n).locator(".frw-badge").get_attribute("data-phase")


def downloaded(lab: Lab, n: int) -> str:
    with lab.page.expect_download() as info:
        widget(lab, n).locator("button", has_text="Download").click()
    path = info.value.path()
    return path.read_text(encoding="utf-8") if path else ""


def test_text_transport_streams_the_same_log(lab: Lab, service: Any) -> None:
    nb = lab.write_notebook(
        "text_transport",
        [
            code_cell(setup_cell(service.endpoint) + WORK),
            code_cell('frw.RunWidget(run, transport="text")'),
        ],
    )
    lab.open(nb)
    lab.run_all()
    lab.wait_for(lambda: lab.page.locator(".frw").count() == 2, "both widgets", 60)
    lab.wait_for(lambda: phase(lab, 1) == "running" and lines(lab, 1) > 0, "text: first lines", 60)
    counts = [lines(lab, 1)]
    lab.wait_for(
        lambda: (counts.append(lines(lab, 1)) or counts[-1] > counts[0]) and phase(lab, 1) == "running",
        "text: the line count to grow while running (counts {})",
        30,
        detail=lambda: counts[-10:],
    )
    for n in (0, 1):
        lab.wait_for(lambda n=n: phase(lab, n) == "succeeded", f"widget {n} to succeed", 60)
        lab.wait_for(lambda n=n: "complete" in count(lab, n), f"widget {n}: complete log", 30)
    assert count(lab, 1) == count(lab, 0), (count(lab, 0), count(lab, 1))
    assert "dropped" not in count(lab, 1)
    binary, text = downloaded(lab, 0), downloaded(lab, 1)
    assert "line 399 café 😀 <b>399</b>" in text and "\x1b" not in text
    assert text == binary
    assert lab.page.locator(".frw b").count() == 0, "a log line became HTML"
    lab.screenshot("text-transport")
