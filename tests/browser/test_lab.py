"""The widget in a real Chromium, in JupyterLab and Notebook 7, against the real Run service."""

from __future__ import annotations

import time

import pytest

import flyte_run_widget as frw

from .conftest import BADGE, COUNT, FRW, Lab, code_cell, setup_cell

pytestmark = pytest.mark.browser

WORK = """
def work(n: int, delay: float) -> int:
    import time
    for i in range(n):
        print(f"\\x1b[32mstep\\x1b[0m {i}", flush=True)
        time.sleep(delay)
    return n
"""


def widget_notebook(lab: Lab, name: str, endpoint: str, n: int, delay: float, extra: list[str] = ()) -> str:
    first = setup_cell(endpoint) + WORK + f"run = frw.run(work, n={n}, delay={delay})\nrun\n"
    return lab.write_notebook(name, [code_cell(first), *(code_cell(src) for src in extra)])


def service_phase(endpoint: str, run_name: str) -> str:
    """The run's phase as the service reports it, asked from this process."""
    frw.init(endpoint, project="proj", domain="development")
    return frw.Run.get(run_name).phase


def test_lab_renders_streams_and_succeeds(lab: Lab, service) -> None:
    nb = widget_notebook(lab, "lab_stream", service.endpoint, n=60, delay=0.05)
    lab.open(nb)
    lab.run_all()
    lab.page.wait_for_selector(FRW, timeout=30_000)
    lab.wait_for(lambda: lab.line_count() > 0, "the first log lines", 30, detail=lab.count_text)
    counts = [lab.line_count()]
    # Lines keep arriving while the task works (60 lines over ~3 s, batched every 0.25 s).
    lab.wait_for(
        lambda: (counts.append(lab.line_count()) or counts[-1] > counts[0]) and lab.phase() == "running",
        "the line count to grow while the run is running (counts {})",
        30,
        detail=lambda: counts[-10:],
    )
    lab.wait_for_phase("succeeded", 60)
    lab.wait_for(
        lambda: "complete" in lab.count_text(), "the log to be complete ({})", 20, detail=lab.count_text
    )
    rows = lab.row_texts()
    assert any(r.startswith("step 59") for r in rows), f"last line not visible: {rows[-5:]}"
    assert not any("\x1b" in r or "[32m" in r for r in rows), "ANSI codes shown literally"
    assert lab.page.query_selector(".frw .frw-row span") is not None, "no coloured span for ANSI green"
    lab.command("application:toggle-left-area")  # more room for the widget in the screenshot
    lab.page.wait_for_timeout(300)
    lab.screenshot("succeeded")


def test_lab_abort_running_task(lab: Lab, service) -> None:
    nb = widget_notebook(lab, "lab_abort", service.endpoint, n=600, delay=0.05)
    lab.open(nb)
    lab.run_all()
    lab.wait_for_phase("running", 60)
    lab.wait_for(lambda: lab.line_count() > 3, "log lines before aborting ({})", 30, detail=lab.count_text)
    name = lab.run_name()
    lab.abort_via_ui()
    lab.wait_for(
        lambda: service_phase(service.endpoint, name) == "aborted",
        f"run {name} to be ABORTED in the service (it is {{}})",
        20,
        interval=0.2,
        detail=lambda: service_phase(service.endpoint, name),
    )
    lab.wait_for_phase("aborted", 20)
    abort_button = lab.page.query_selector(".frw button.frw-abort")
    assert abort_button is not None and abort_button.is_disabled(), (
        "Abort is still enabled after the run ended"
    )
    lines = lab.line_count()
    assert lines < 600, f"the task was not stopped: {lines} lines"
    lab.screenshot("aborted")


def test_lab_abort_while_a_cell_blocks_in_wait(lab: Lab, service) -> None:
    nb = widget_notebook(
        lab,
        "lab_abort_wait",
        service.endpoint,
        n=1200,
        delay=0.05,
        extra=["run.wait()\nprint('wait returned:', run.phase)"],
    )
    lab.open(nb)
    lab.run_all()
    lab.wait_for_phase("running", 60)
    lab.wait_for(lambda: lab.line_count() > 3, "log lines before aborting ({})", 30, detail=lab.count_text)

    # Cell A is done, cell B is blocked inside run.wait(), which shows its progress panel. The
    # kernel's status is no proof: the widget's messages, handled while the cell blocks, each
    # end with an "idle" that JupyterLab's status shows although cell B still runs.
    def b_blocks_in_wait() -> bool:
        counts = lab.execution_counts()
        out = lab.page.evaluate(
            "() => document.querySelector('.jp-Notebook .jp-Cell:nth-child(2) .jp-OutputArea')"
            "?.innerText ?? ''"
        )
        return counts[0] is not None and counts[1] is None and "RUNNING" in out

    lab.wait_for(
        b_blocks_in_wait,
        "cell A to finish and cell B to block in run.wait() (counts {})",
        30,
        detail=lab.execution_counts,
    )
    lab.page.wait_for_timeout(1000)
    assert b_blocks_in_wait(), "cell B did not block"
    name = lab.run_name()
    clicked = lab.abort_via_ui()
    lab.wait_for(
        lambda: service_phase(service.endpoint, name) == "aborted",
        f"run {name} to be ABORTED in the service while cell B blocks in run.wait() (it is {{}}): "
        "the kernel did not handle the click while the cell was blocked",
        20,
        interval=0.05,
        detail=lambda: service_phase(service.endpoint, name),
    )
    took = time.monotonic() - clicked
    lab.wait_for(
        lambda: lab.execution_counts()[1] is not None and lab.kernel_status() == "idle",
        "cell B to finish after the abort (counts {})",
        20,
        detail=lambda: (lab.execution_counts(), lab.kernel_status()),
    )
    lab.wait_for_phase("aborted", 20)
    outputs = lab.page.inner_text(".jp-Notebook .jp-Cell:nth-child(2) .jp-OutputArea")
    lab.screenshot("aborted-during-wait")
    assert "wait returned: aborted" in outputs, f"cell B printed {outputs!r}"
    assert took <= 2.5, f"the run was ABORTED in the service {took:.2f}s after the click (want ~2 s)"


XSS_TASK = """
def hostile(n: int) -> str:
    import time
    for i in range(n):
        print("<img src=x onerror=alert(1)>", flush=True)
        print("<script>alert(1)</script>", flush=True)
        print(f"\\x1b[31m<b onmouseover=alert(2)>bold {i}</b>\\x1b[0m", flush=True)
        time.sleep(0.05)
    return "<img src=x onerror=alert(3)>"

def hostile_failure() -> None:
    print("<svg onload=alert(4)>", flush=True)
    raise ValueError("<img src=x onerror=alert(5)><script>alert(6)</script>")
"""


def test_lab_log_text_runs_no_script(lab: Lab, service) -> None:
    nb = lab.write_notebook(
        "lab_xss",
        [
            code_cell(setup_cell(service.endpoint) + XSS_TASK + "ok = frw.run(hostile, n=5)\nok\n"),
            code_cell("bad = frw.run(hostile_failure)\nbad\n"),
        ],
    )
    lab.open(nb)
    lab.run_all()
    lab.wait_for(lambda: len(lab.page.query_selector_all(FRW)) == 2, "two widgets", 30)
    phases = lambda: lab.page.eval_on_selector_all(BADGE, "(els) => els.map((e) => e.dataset.phase)")  # noqa: E731
    lab.wait_for(
        lambda: phases() == ["succeeded", "failed"],
        "phases succeeded and failed (they are {})",
        60,
        detail=phases,
    )
    lab.wait_for(
        lambda: lab.page.eval_on_selector_all(
            COUNT, "(els) => els.every((e) => e.textContent.includes('complete'))"
        ),
        "both logs to be complete",
        20,
    )
    lab.page.wait_for_timeout(500)  # a late onerror / onload would fire by now
    # The widgets' text only (the code cells hold the same strings in their source).
    text = "\n".join(lab.page.eval_on_selector_all(FRW, "(els) => els.map((e) => e.innerText)"))
    for literal in (
        "<img src=x onerror=alert(1)>",
        "<script>alert(1)</script>",
        "<b onmouseover=alert(2)>bold 4</b>",
        "<svg onload=alert(4)>",
        "<img src=x onerror=alert(3)>",  # the output value
        "<img src=x onerror=alert(5)><script>alert(6)</script>",  # the error message
    ):
        assert literal in text, f"{literal!r} is not shown as text; screenshot {lab.screenshot('xss')}"
    injected = lab.page.eval_on_selector_all(
        ".frw img, .frw script, .frw svg, .frw b, .frw iframe,"
        " .frw [onerror], .frw [onload], .frw [onmouseover]",
        "(els) => els.map((e) => e.outerHTML)",
    )
    shot = lab.screenshot("no-script")
    assert injected == [], f"elements injected into the widget: {injected}; screenshot {shot}"
    assert lab.page.query_selector_all('img[src="x"]') == [], f"an <img src=x> exists on the page; {shot}"
    assert lab.dialogs == [], f"a script ran: dialogs {lab.dialogs}; screenshot {shot}"


def test_lab_reload_shows_widget_and_log_again(lab: Lab, service) -> None:
    nb = widget_notebook(lab, "lab_reload", service.endpoint, n=30, delay=0.02)
    lab.open(nb)
    lab.run_all()
    lab.wait_for_phase("succeeded", 60)
    lab.wait_for(
        lambda: "complete" in lab.count_text(), "the log to be complete ({})", 20, detail=lab.count_text
    )
    before = lab.count_text()
    name = lab.run_name()
    lab.save()
    saved = lab.server.read_notebook(nb)
    mimes = [set(o.get("data", {})) for o in saved["cells"][0]["outputs"]]
    assert any("application/vnd.jupyter.widget-view+json" in m for m in mimes), (
        f"no widget view saved: {mimes}"
    )
    assert "application/vnd.jupyter.widget-state+json" in saved["metadata"].get("widgets", {}), (
        "saveState is on but no widget state was saved"
    )
    lab.screenshot("before-reload")

    lab.page.reload(wait_until="domcontentloaded")
    lab.wait_notebook_ready(60)
    lab.page.wait_for_selector(FRW, timeout=30_000)
    lab.wait_for(
        lambda: lab.phase() == "succeeded",
        "the reloaded widget's badge to show succeeded ({})",
        30,
        detail=lab.phase,
    )
    lab.wait_for(
        lambda: lab.count_text() == before,
        f"the reloaded log to hold {before!r} (it shows {{}})",
        30,
        detail=lab.count_text,
    )
    rows = lab.row_texts()
    assert lab.run_name() == name
    assert any(r.startswith("step 29") for r in rows), f"last line not shown after reload: {rows[-5:]}"
    lab.screenshot("after-reload")


def test_notebook7_renders_and_succeeds(lab: Lab, service) -> None:
    nb = widget_notebook(lab, "nb7_stream", service.endpoint, n=40, delay=0.05)
    lab.open(nb, ui="notebook")
    assert "/notebooks/" in lab.page.url
    lab.run_all()
    lab.page.wait_for_selector(FRW, timeout=30_000)
    lab.wait_for(lambda: lab.line_count() > 0, "the first log lines", 30, detail=lab.count_text)
    lab.wait_for_phase("succeeded", 60)
    lab.wait_for(
        lambda: "complete" in lab.count_text(), "the log to be complete ({})", 20, detail=lab.count_text
    )
    rows = lab.row_texts()
    assert any(r.startswith("step 39") for r in rows), f"last line not visible: {rows[-5:]}"
    assert "o0 = 40" in lab.page.inner_text(FRW)
    lab.screenshot("succeeded")
