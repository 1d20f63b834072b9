"""The run page and the runs list page, served by the Run service itself, in a real Chromium:
no JupyterLab and no kernel, the page talks to the service from the browser (Connect, JSON).

- `run.url` of a running run: the log streams while the task runs, Abort with its confirm ends
  the run ABORTED in the service.
- The list page follows WatchRuns and links to each run's page.
- HTML in a task name, a log line, an error message and the URL's run name stays text.
- A service with a token: the page asks for it, or takes it from `#token=` and drops it from
  the address bar; its calls carry it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from conftest import LocalService, ServiceClient, python_task  # tests/conftest.py; `client` too
from flyteidl2.common import identifier_pb2 as ids
from flyteidl2.common import phase_pb2
from flyteidl2.workflow import run_service_pb2

import flyte_run_widget as frw

from .conftest import ABORT, ARTIFACTS, BADGE, CONFIRM_YES

pytestmark = pytest.mark.browser

# Prints a numbered line every 0.2 s until the file named by argv[1] exists (never, here).
TICKING = (
    "import os, sys, time\n"
    "i = 0\n"
    "while not os.path.exists(sys.argv[1]):\n"
    "    print('tick', i, flush=True); i += 1; time.sleep(0.2)\n"
)
# No dot in it: a task's short name is what follows its last dot.
HOSTILE = "<img src=x onerror=alert(1)>"
LIST = "/v2/domain/development/project/proj/runs"


class Page:
    """One browser page on the service, with the waits the tests need."""

    def __init__(self, browser: Any, name: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(30_000)
        self.page = self.context.new_page()
        self.name = name
        self.console: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def shot(self, label: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path))
        return path

    def wait_for(self, predicate: Callable[[], Any], what: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = predicate()
                if value:
                    return value
            except Exception:  # the page is between two documents
                pass
            if time.monotonic() >= deadline:
                shot = self.shot("failure")
                pytest.fail(
                    f"timed out after {timeout:.0f}s waiting for {what}\nscreenshot: {shot}\n"
                    f"console: {self.console[-10:]}\npage errors: {self.errors[-5:]}",
                    pytrace=False,
                )
            self.page.wait_for_timeout(100)

    def phase(self) -> str | None:
        el = self.page.query_selector(BADGE)
        return el.get_attribute("data-phase") if el else None

    def line_count(self) -> int:
        text = (self.page.text_content(".frw .frw-count") or "").split(" ")[0].replace(",", "")
        return int(text) if text.isdigit() else 0

    def no_csp_violation(self) -> None:
        blocked = [m for m in self.console if "Content Security Policy" in m]
        assert not blocked, blocked
        assert not self.errors, self.errors


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Page]:
    p = Page(browser, request.node.name)
    try:
        yield p
    finally:
        p.context.close()


def _phase_in_service(client: ServiceClient, name: str) -> int:
    req = run_service_pb2.GetRunDetailsRequest(
        run_id=ids.RunIdentifier(project="proj", domain="development", name=name)
    )
    return int(client.runs.GetRunDetails(req, timeout=10).details.action.status.phase)


def test_run_url_streams_the_log_and_aborts(
    service: LocalService, client: ServiceClient, page: Page, tmp_path: Path
) -> None:
    name = client.create(python_task(TICKING, str(tmp_path / "never"))).action.id.run.name
    frw.init(service.endpoint, project="proj", domain="development")
    url = frw.Run.get(name).url
    page.page.goto(url)
    page.wait_for(lambda: page.phase() == "running", "the badge to show running")
    assert page.page.inner_text(".frw .frw-name").strip() == name
    first = page.wait_for(page.line_count, "the first log lines")
    # Lines keep arriving while the task runs: the log is followed, not read once.
    page.wait_for(lambda: page.line_count() >= first + 5, f"more than {first} + 5 lines while running")
    assert page.phase() == "running"
    assert _phase_in_service(client, name) == phase_pb2.ACTION_PHASE_RUNNING
    ticks = page.page.eval_on_selector_all(".frw .frw-row", "(rows) => rows.map((r) => r.textContent)")
    assert any(t.startswith("tick ") for t in ticks), ticks
    page.shot("running")

    page.page.click(ABORT)
    page.page.wait_for_selector(CONFIRM_YES, state="visible")
    # Nothing is aborted before the confirm.
    assert _phase_in_service(client, name) == phase_pb2.ACTION_PHASE_RUNNING
    page.page.click(CONFIRM_YES)
    page.wait_for(lambda: page.phase() == "aborted", "the badge to show aborted")
    assert _phase_in_service(client, name) == phase_pb2.ACTION_PHASE_ABORTED
    page.wait_for(
        lambda: "Aborted from the run page" in (page.page.text_content("body") or ""),
        "the abort reason on the page",
    )
    page.shot("aborted")
    page.no_csp_violation()


def test_list_page_follows_runs_and_links_to_them(
    service: LocalService, client: ServiceClient, page: Page
) -> None:
    before = client.create(python_task("print('one')")).action.id.run.name
    page.page.goto(f"http://{service.endpoint}{LIST}")
    rows = ".frwt-row .frwt-name"

    def names() -> list[str]:
        return [t.strip() for t in page.page.eval_on_selector_all(rows, "(e) => e.map((x) => x.textContent)")]

    page.wait_for(lambda: before in names(), f"run {before} in the list")
    # A run made after the page loaded appears: the page follows WatchRuns.
    after = client.create(python_task("print('two')")).action.id.run.name
    page.wait_for(lambda: after in names(), f"run {after} in the list")
    page.shot("list")
    page.page.click(f"{rows} >> text={after}")
    page.wait_for(lambda: page.page.url.endswith(f"{LIST}/{after}"), "the run's page to open")
    page.wait_for(lambda: page.phase() == "succeeded", "the opened run's badge")
    assert page.page.inner_text(".frw .frw-name").strip() == after
    # The root redirects to the default project's list.
    page.page.goto(f"http://{service.endpoint}/")
    assert page.page.url.endswith("/v2/domain/development/project/flytesnacks/runs")
    page.no_csp_violation()


def test_hostile_text_stays_text(service: LocalService, client: ServiceClient, page: Page) -> None:
    code = f"import sys\nprint({HOSTILE!r}, flush=True)\nsys.exit({HOSTILE!r})"
    run = client.create(python_task(code, name=f"t.{HOSTILE}"))
    name = run.action.id.run.name
    client.wait(run.action.id)
    page.page.goto(f"http://{service.endpoint}{LIST}/{name}")
    page.wait_for(lambda: page.phase() == "failed", "the badge to show failed")
    page.wait_for(lambda: page.line_count() >= 2, "the log lines")
    text = page.page.text_content("body") or ""
    assert text.count(HOSTILE) >= 2, text  # the task's name, the log line (and the error)
    page.page.goto(f"http://{service.endpoint}{LIST}")
    page.wait_for(
        lambda: HOSTILE in (page.page.text_content(".frwt-rows") or ""), "the task name in the list"
    )
    # A run name in the address is read from the URL: shown as text too.
    page.page.goto(f"http://{service.endpoint}{LIST}/{quote(HOSTILE, safe='')}")
    page.wait_for(
        lambda: HOSTILE in (page.page.text_content(".frw .frw-name") or ""), "the URL's name as text"
    )
    page.shot("hostile")
    assert page.dialogs == []
    assert page.page.query_selector("img") is None
    page.no_csp_violation()


def test_page_of_a_service_with_a_token(browser: Any, page: Page, tmp_path: Path) -> None:
    data = tmp_path / "data"
    service = LocalService(data, args=["--token-file", str(data / "service.token")])
    try:
        token = (data / "service.token").read_text().strip()
        import grpc
        from flyteidl2.workflow import run_service_pb2_grpc

        with grpc.insecure_channel(service.endpoint) as channel:
            stub = run_service_pb2_grpc.RunServiceStub(channel)
            req = run_service_pb2.CreateRunRequest(
                project_id=ids.ProjectIdentifier(name="proj", domain="development"),
                task_spec=python_task("print('secret-free line')"),
            )
            name = stub.CreateRun(
                req, timeout=20, metadata=[("authorization", f"Bearer {token}")]
            ).run.action.id.run.name
        url = f"http://{service.endpoint}{LIST}/{name}"
        # No token: the page serves, its calls are refused, and it asks for the token.
        page.page.goto(url)
        page.page.wait_for_selector("form.frw-token input[type=password]")
        assert page.page.query_selector(BADGE) is None or page.phase() != "succeeded"
        page.page.fill("form.frw-token input", token)
        page.page.click("form.frw-token button")
        page.wait_for(lambda: page.phase() == "succeeded", "the run once the token is given")
        # From the fragment (what `flyte-run-widget open` adds), in a fresh tab: the token
        # leaves the address bar.
        fresh = Page(browser, page.name + "-fragment")
        try:
            fresh.page.goto(f"{url}#token={token}")
            fresh.wait_for(lambda: fresh.phase() == "succeeded", "the run with the fragment's token")
            assert token not in fresh.page.url
            fresh.wait_for(lambda: fresh.line_count() >= 1, "the log with the fragment's token")
            fresh.page.goto(f"http://{service.endpoint}{LIST}")
            fresh.wait_for(
                lambda: name in (fresh.page.text_content(".frwt-rows") or ""), "the list, same tab"
            )
        finally:
            fresh.context.close()
    finally:
        service.stop()


def test_tree_selects_a_child(tree_service: LocalService, page: Page) -> None:
    from test_widget_tree_service import fan  # tests/: tasks with child actions, one failing

    run = frw.run(fan, n=6)
    run.wait(quiet=True)
    page.page.goto(run.url)
    page.wait_for(lambda: page.phase() == "succeeded", "the run's badge")
    rows = ".frw-tree .frw-trow"
    page.wait_for(lambda: len(page.page.query_selector_all(rows)) == 9, "the root, two groups and six leaves")
    # The failed child: its own log line and error replace the root's in the panels.
    page.page.click(f"{rows}.frw-phase-failed .frw-tname")
    body = lambda: page.page.text_content("body") or ""  # noqa: E731
    page.wait_for(lambda: "leaf 4 says hello" in body(), "the selected child's log line")
    page.wait_for(lambda: "leaf 4 refuses" in body(), "the selected child's error")
    assert "Action " in (page.page.text_content(".frw .frw-selection") or "")
    page.shot("child")
    page.no_csp_violation()
