"""The run widget in marimo (``mo.ui.anywidget``), served by ``marimo run --headless`` and driven in
Chromium: the log streams, the badge follows the run, Abort (with its confirm) aborts the run in
the service. marimo draws each output in a shadow root; Playwright's CSS selectors reach into it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import skip_or_fail  # tests/conftest.py

import flyte_run_widget as frw

from .conftest import ABORT, BADGE, CONFIRM_YES, COUNT, REPO, _free_port

pytestmark = pytest.mark.browser

NOTEBOOK = """
import marimo

app = marimo.App()


@app.cell
def _():
    import os

    import marimo as mo

    import flyte_run_widget as frw

    frw.init(os.environ["FRW_TEST_ENDPOINT"], project="proj", domain="development")

    def work(n: int, delay: float) -> int:
        import time

        for i in range(n):
            print(f"step {i}", flush=True)
            time.sleep(delay)
        return n

    short = frw.run(work, n=40, delay=0.02)
    long = frw.run(work, n=2000, delay=0.05)
    views = [frw.RunWidget(short), frw.RunWidget(long)]
    # The cell ends (and marimo shows the output) only once lines of the long run went out:
    # the page has missed those, and must get them back.
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (1 in views[1]._logs and views[1]._logs[1].sent > 0):
        time.sleep(0.05)
    mo.vstack([mo.ui.anywidget(v) for v in views])
    return
"""


class Marimo:
    """``marimo run --headless`` of one notebook on a free loopback port."""

    def __init__(self, folder: Path, endpoint: str) -> None:
        try:
            import marimo  # noqa: F401
        except ImportError as exc:
            skip_or_fail(f"marimo is not installed ({exc}): pip install -e '.[test]'")
        self.path = folder / "run_widget_marimo.py"
        self.path.write_text(NOTEBOOK)
        self.log = folder / "marimo.log"
        self.port = _free_port()
        env = dict(os.environ, FRW_TEST_ENDPOINT=endpoint)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        env.pop("ANYWIDGET_HMR", None)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "marimo", "run", "--headless", str(self.path), *self._options()],
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"marimo did not start:\n{self.log.read_text()[-3000:]}")

    def _options(self) -> list[str]:
        return ["--host", "127.0.0.1", "--port", str(self.port), "--no-token"]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def marimo_page(tmp_path: Path, service: Any, browser: Any) -> Iterator[Any]:
    app = Marimo(tmp_path, service.endpoint)
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: "flyte-run-widget" in m.text and errors.append(m.text))
    try:
        page.goto(app.url, wait_until="domcontentloaded")
        yield page
        assert errors == [], f"errors in the page: {errors[:5]}"
    finally:
        context.close()
        app.stop()


def wait_for(page: Any, predicate: Any, what: str, timeout: float = 60, detail: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            shot = REPO / "test-artifacts" / "test_marimo-failure.png"
            shot.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(shot))
            shown = f" (it shows {detail()})" if detail else ""
            pytest.fail(f"timed out waiting for {what}{shown}; screenshot {shot}", pytrace=False)
        page.wait_for_timeout(100)


def lines(page: Any, n: int) -> int:
    text = page.locator(COUNT).nth(n).inner_text().split(" ")[0].replace(",", "")
    return int(text) if text.isdigit() else 0


def phase(page: Any, n: int) -> str | None:
    return page.locator(BADGE).nth(n).get_attribute("data-phase")


def service_phase(endpoint: str, name: str) -> str:
    frw.init(endpoint, project="proj", domain="development")
    return frw.Run.get(name).phase


def test_marimo_streams_succeeds_and_aborts(marimo_page: Any, service: Any) -> None:
    page = marimo_page
    page.locator(BADGE).nth(1).wait_for(timeout=60_000)

    # The short run: every line, in order, and the badge at its end phase.
    wait_for(page, lambda: phase(page, 0) == "succeeded", "run 1 to succeed", 60, lambda: phase(page, 0))
    first = page.locator(".frw").nth(0)
    wait_for(page, lambda: "complete" in first.locator(".frw-count").inner_text(), "its log to be complete")
    # marimo makes the model when the output shows, after the first lines went out: the page
    # asks for them again, and none may be counted as dropped.
    count = first.locator(".frw-count").inner_text()
    assert "dropped" not in count and count.startswith("42 lines"), count
    rows = [t for t in first.locator(".frw-row").all_inner_texts() if t.startswith("step ")]
    assert rows[-1] == "step 39", rows[-5:]
    assert rows == [f"step {i}" for i in range(40 - len(rows), 40)], "lines lost or out of order"

    # The long run streams while it runs: the line count grows under a "running" badge.
    wait_for(page, lambda: phase(page, 1) == "running" and lines(page, 1) > 3, "lines of the running run")
    counts = [lines(page, 1)]
    wait_for(
        page,
        lambda: counts.append(lines(page, 1)) or (counts[-1] > counts[0] and phase(page, 1) == "running"),
        "the line count to grow",
        detail=lambda: counts[-5:],
    )

    # Abort, confirmed: the service aborts the run and the badge follows.
    second = page.locator(".frw").nth(1)
    name = second.locator(".frw-name").inner_text().strip()
    second.locator(ABORT.removeprefix(".frw ")).click()
    second.locator(CONFIRM_YES.removeprefix(".frw ")).click()
    wait_for(
        page,
        lambda: service_phase(service.endpoint, name) == "aborted",
        f"run {name} to be aborted in the service",
        timeout=30,
        detail=lambda: service_phase(service.endpoint, name),
    )
    wait_for(page, lambda: phase(page, 1) == "aborted", "the badge: aborted", 30, lambda: phase(page, 1))
    wait_for(page, lambda: "complete" in second.locator(".frw-count").inner_text(), "the log to end")
    count = second.locator(".frw-count").inner_text()
    assert "dropped" not in count, count
    rows = second.locator(".frw-row").all_inner_texts()
    assert rows[-1].startswith("aborted"), rows[-3:]
    first_name = first.locator(".frw-name").inner_text().strip()
    assert service_phase(service.endpoint, first_name) == "succeeded"
    page.screenshot(path=str(REPO / "test-artifacts" / "test_marimo-aborted.png"))
