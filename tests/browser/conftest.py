"""Fixtures for the browser tests: one JupyterLab server per session (it also serves Notebook 7),
one headless Debian chromium driven by Playwright, a fresh page and a fresh notebook per test.

    @pytest.mark.browser
    def test_x(lab, service):
        path = lab.write_notebook("x", [code_cell(...)])
        lab.open(path)                    # JupyterLab; lab.open(path, ui="notebook") for Notebook 7
        lab.run_all()
        lab.wait_for(lambda: ..., "what we waited for", timeout=30)
        lab.screenshot("x")

Nothing here hard-codes a path: the repo root is found from this file and put on the kernel's
PYTHONPATH, the kernelspec points at the interpreter running pytest, and every Jupyter folder
(config, data, runtime, settings, workspaces) is a temporary one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import skip_or_fail  # tests/conftest.py

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
KERNEL_NAME = "frw-test"
CHROMIUM_CANDIDATES = (
    os.environ.get("FRW_CHROMIUM", ""),
    "/usr/lib/chromium/chromium",
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# A widget root and its parts (js/src/widget.js, badge.js, controls.js, logview.js).
FRW = ".frw"
BADGE = ".frw .frw-badge"
ROWS = ".frw .frw-row"
COUNT = ".frw .frw-count"
ABORT = ".frw button.frw-abort"
CONFIRM_YES = ".frw .frw-confirm button.frw-danger"


def _chromium() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_json(url: str, method: str = "GET", body: Any = None, timeout: float = 10) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def code_cell(source: str) -> dict[str, Any]:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}


def setup_cell(endpoint: str) -> str:
    """The first lines of every test notebook: the package, pointed at the test's service."""
    return f"import flyte_run_widget as frw\nfrw.init({endpoint!r}, project='proj', domain='development')\n"


class JupyterServer:
    """A JupyterLab server (with Notebook 7) on a free loopback port, in throwaway folders."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "root"
        self.root.mkdir(parents=True)
        self.log_path = base / "jupyter.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.env = self._environment()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_kernel(self, name: str, python: str, data_dir: Path | None = None) -> str:
        """A kernelspec ``name`` running ``python`` (which needs ipykernel), importing the package
        from the repo; the server finds it when a notebook asks for it."""
        kernel_dir = (data_dir or Path(self.env["JUPYTER_DATA_DIR"])) / "kernels" / name
        kernel_dir.mkdir(parents=True, exist_ok=True)
        (kernel_dir / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": f"flyte-run-widget tests ({name})",
                    "language": "python",
                    "env": {"PYTHONPATH": self._pythonpath},
                    "metadata": {"debugger": False},
                }
            )
        )
        return name

    def _environment(self) -> dict[str, str]:
        base = self.base
        dirs = {
            "JUPYTER_CONFIG_DIR": base / "config",
            "JUPYTER_DATA_DIR": base / "data",
            "JUPYTER_RUNTIME_DIR": base / "runtime",
            "JUPYTERLAB_SETTINGS_DIR": base / "lab-settings",
            "JUPYTERLAB_WORKSPACES_DIR": base / "lab-workspaces",
            "IPYTHONDIR": base / "ipython",
        }
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update({k: str(v) for k, v in dirs.items()})
        env.pop("JUPYTER_PATH", None)
        env.pop("ANYWIDGET_HMR", None)  # no file watchers in tests
        pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        env["PYTHONPATH"] = pythonpath

        # A kernelspec for the interpreter running the tests, importing the package from the repo.
        self._pythonpath = pythonpath
        self.add_kernel(KERNEL_NAME, sys.executable, data_dir=dirs["JUPYTER_DATA_DIR"])

        # Settings for JupyterLab and Notebook 7 (both read JUPYTERLAB_SETTINGS_DIR): no news
        # toast over the widget, and widget state saved into the notebook on save.
        settings = dirs["JUPYTERLAB_SETTINGS_DIR"]
        user_settings = {
            "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
                "fetchNews": "false",
                "checkForUpdates": False,
                "doNotDisturbMode": True,
            },
            "@jupyter-widgets/jupyterlab-manager/plugin.jupyterlab-settings": {"saveState": True},
            "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        }
        for rel, value in user_settings.items():
            path = settings / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))

        (dirs["JUPYTER_CONFIG_DIR"] / "jupyter_server_config.json").write_text(
            json.dumps(
                {
                    "ServerApp": {
                        "ip": "127.0.0.1",
                        "open_browser": False,
                        "allow_root": True,
                        "password": "",
                        "disable_check_xsrf": True,
                        "root_dir": str(self.root),
                        "port_retries": 0,
                    },
                    "IdentityProvider": {"token": ""},
                    "LabApp": {
                        "expose_app_in_browser": True,
                        "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                    },
                    "JupyterNotebookApp": {"expose_app_in_browser": True},
                    "LanguageServerManager": {"autodetect": False},
                }
            )
        )
        return env

    def start(self, timeout: float = 60) -> None:
        last_error = ""
        for _ in range(3):  # a free port can be taken between the probe and the bind
            self.port = _free_port()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "jupyterlab", f"--ServerApp.port={self.port}"],
                    cwd=self.root,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    _get_json(f"{self.url}/api/status", timeout=2)
                    return
                except (OSError, ValueError) as e:
                    last_error = str(e)
                time.sleep(0.1)
            self.stop()
        raise RuntimeError(
            f"JupyterLab did not start ({last_error}); log:\n{self.log_path.read_text()[-4000:]}"
        )

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        return _get_json(f"{self.url}/api/{path}", method=method, body=body)

    def shutdown_kernels(self) -> None:
        """Kernels outlive pages: end every session this server holds."""
        try:
            for session in self.api("sessions"):
                self.api(f"sessions/{session['id']}", method="DELETE")
            for kernel in self.api("kernels"):
                self.api(f"kernels/{kernel['id']}", method="DELETE")
        except (OSError, ValueError):
            pass

    def write_notebook(self, name: str, cells: list[dict[str, Any]], kernel: str = KERNEL_NAME) -> str:
        nb = {
            "cells": cells,
            "metadata": {
                "kernelspec": {
                    "name": kernel,
                    "display_name": "flyte-run-widget tests",
                    "language": "python",
                },
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        for i, cell in enumerate(cells):
            cell.setdefault("id", f"cell-{i}")
        filename = f"{name}.ipynb"
        (self.root / filename).write_text(json.dumps(nb, indent=1))
        return filename

    def read_notebook(self, filename: str) -> dict[str, Any]:
        return json.loads((self.root / filename).read_text())


class Lab:
    """One test's page on the shared server, with the waits and screenshots every test needs."""

    def __init__(self, server: JupyterServer, page: Any, test_name: str) -> None:
        self.server = server
        self.page = page
        self.test_name = test_name
        self.dialogs: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.ui = "lab"
        self.filename = ""
        self.failure_shot: Path | None = None
        page.on("dialog", self._on_dialog)
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    # -- notebooks ---------------------------------------------------------------------------

    def write_notebook(self, name: str, cells: list[dict[str, Any]], kernel: str = KERNEL_NAME) -> str:
        return self.server.write_notebook(name, cells, kernel)

    def open(self, filename: str, ui: str = "lab", timeout: float = 60) -> None:
        """Open ``filename`` in JupyterLab (``ui="lab"``) or Notebook 7 (``ui="notebook"``) and wait
        until its kernel is idle."""
        self.ui, self.filename = ui, filename
        path = f"/lab/tree/{filename}" if ui == "lab" else f"/notebooks/{filename}"
        # ?reset: no workspace restored from an earlier test in the same server.
        self.page.goto(
            f"{self.server.url}{path}{'?reset' if ui == 'lab' else ''}", wait_until="domcontentloaded"
        )
        self.wait_notebook_ready(timeout)

    def wait_notebook_ready(self, timeout: float = 60) -> None:
        self.wait_for(
            lambda: self.page.evaluate(
                """() => {
                    const app = window.jupyterapp
                    const nb = app && app.shell && app.shell.currentWidget
                    const ctx = nb && nb.sessionContext
                    return !!(ctx && ctx.session && ctx.session.kernel && ctx.session.kernel.status === 'idle'
                              && nb.content && nb.content.widgets && nb.content.widgets.length > 0)
                }"""
            ),
            f"the notebook {self.filename} to open with an idle kernel",
            timeout,
        )

    def command(self, command: str) -> None:
        """Start a JupyterLab command; do not wait for it (run-all resolves only when every cell
        has finished, and a cell may block on purpose)."""
        self.page.evaluate("(c) => { window.jupyterapp.commands.execute(c) }", command)

    def run_all(self) -> None:
        self.command("notebook:run-all-cells")

    def save(self) -> None:
        self.command("docmanager:save")
        self.wait_for(
            lambda: not self.page.evaluate("() => window.jupyterapp.shell.currentWidget.context.model.dirty"),
            "the notebook to be saved",
            20,
        )

    def kernel_status(self) -> str:
        return str(
            self.page.evaluate(
                "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status"
            )
        )

    def execution_counts(self) -> list[int | None]:
        """Each code cell's execution count as the page shows it (None: not run or running)."""
        return list(
            self.page.evaluate(
                """() => window.jupyterapp.shell.currentWidget.content.widgets
                        .filter((c) => c.model.type === 'code')
                        .map((c) => c.model.executionCount)"""
            )
        )

    # -- the widget ----------------------------------------------------------------------------

    def phase(self) -> str | None:
        el = self.page.query_selector(BADGE)
        return el.get_attribute("data-phase") if el else None

    def count_text(self) -> str:
        el = self.page.query_selector(COUNT)
        return el.inner_text() if el else ""

    def line_count(self) -> int:
        """The number of lines the log view holds, from its count text ("1,234 lines · complete")."""
        text = self.count_text().split(" ")[0].replace(",", "").replace("\u202f", "")
        return int(text) if text.isdigit() else 0

    def row_texts(self) -> list[str]:
        return list(self.page.eval_on_selector_all(ROWS, "(rows) => rows.map((r) => r.textContent)"))

    def run_name(self) -> str:
        return self.page.inner_text(".frw .frw-name").strip()

    def wait_for_phase(self, phase: str, timeout: float = 60) -> None:
        self.wait_for(
            lambda: self.phase() == phase,
            f"the badge to show {phase!r} (it shows {{}})",
            timeout,
            detail=self.phase,
        )

    def abort_via_ui(self) -> float:
        """Click Abort, then the confirm button; the monotonic time of the confirming click."""
        self.page.click(ABORT, timeout=10_000)
        self.page.wait_for_selector(CONFIRM_YES, state="visible", timeout=10_000)
        self.page.click(CONFIRM_YES, timeout=10_000)
        return time.monotonic()

    # -- waiting and evidence --------------------------------------------------------------------

    def screenshot(self, label: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{self.test_name}-{label}.png"
        try:
            self.page.screenshot(path=str(path), full_page=False)
        except Exception as e:  # a crashed page still deserves a clear failure message
            return Path(f"(no screenshot: {e})")
        return path

    def fail(self, message: str) -> None:
        shot = self.screenshot("failure")
        self.failure_shot = shot
        extra = ""
        if self.page_errors:
            extra += f"\npage errors: {self.page_errors[-5:]}"
        if self.dialogs:
            extra += f"\ndialogs: {self.dialogs}"
        pytest.fail(f"{message}\nscreenshot: {shot}{extra}", pytrace=False)

    def wait_for(
        self,
        predicate: Callable[[], Any],
        what: str,
        timeout: float = 30,
        interval: float = 0.1,
        detail: Callable[[], Any] | None = None,
    ) -> Any:
        """Poll ``predicate`` until truthy; on timeout fail with ``what`` and a screenshot."""
        deadline = time.monotonic() + timeout
        last_exc: Exception | None = None
        while True:
            try:
                value = predicate()
                if value:
                    return value
                last_exc = None
            except Exception as e:  # the page is mid-navigation, an element went away
                last_exc = e
            if time.monotonic() >= deadline:
                shown = ""
                if detail is not None:
                    try:
                        shown = str(detail())
                    except Exception as e:
                        shown = f"? ({e})"
                msg = f"timed out after {timeout:.0f}s waiting for {what.replace('{}', shown)}"
                if last_exc is not None:
                    msg += f" (last error: {last_exc!r})"
                self.fail(msg)
            self.page.wait_for_timeout(interval * 1000)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = _chromium()
    if path is None:
        skip_or_fail("no chromium found (apt-get install chromium, or set FRW_CHROMIUM)")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    try:
        from playwright import sync_api
    except ImportError as exc:
        skip_or_fail(f"Playwright is not installed ({exc}): pip install -e '.[test]'")
    pw = sync_api.sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[JupyterServer]:
    server = JupyterServer(tmp_path_factory.mktemp("jupyter"))
    server.start()
    try:
        yield server
    finally:
        server.shutdown_kernels()
        server.stop()
        if os.environ.get("FRW_KEEP_JUPYTER_LOG"):
            ARTIFACTS.mkdir(exist_ok=True)
            shutil.copy(server.log_path, ARTIFACTS / "jupyter.log")


@pytest.fixture
def lab(jupyter_server: JupyterServer, browser: Any, request: pytest.FixtureRequest) -> Iterator[Lab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    helper = Lab(jupyter_server, page, request.node.name)
    try:
        yield helper
    finally:
        context.close()
        jupyter_server.shutdown_kernels()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    rep = yield
    # On an unexpected error, a screenshot of the page as it was (before fixtures tear down the
    # service and the page), named in the report.
    lab = getattr(item, "funcargs", {}).get("lab")
    if rep.when == "call" and rep.failed and isinstance(lab, Lab):
        shot = lab.failure_shot or lab.screenshot("failure")
        rep.sections.append(("browser", f"screenshot: {shot}"))
    return rep
