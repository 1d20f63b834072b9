"""The API key stays out of everything a notebook keeps: a notebook run in JupyterLab against a
service that wants a token and TLS, saved from the browser with widget state on, holds neither the
key nor a wrong key tried on purpose, and neither does the page.

The key reaches the kernel only from a private file (never the cell source) and is put where a
careless implementation would leak it: the kernel's environment (as FLYTE_RUN_WIDGET_API_KEY), the
Config shown as a cell result, the widgets of a run that succeeds and one that fails (live state,
saved state and the static HTML snapshot), repr(run), run.wait()'s panel, show_logs, DEBUG log lines
printed into the notebook, and the errors of a wrong key, caught and printed, then uncaught.

The check cannot pass on an empty save: the saved notebook must hold the widget state, both run
names, the task's log line, the caught error and the traceback.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from conftest import SECRET, TOKEN  # tests/conftest.py: the `exposed` service's token and secret

from .conftest import BADGE, COUNT, FRW, Lab, code_cell

pytestmark = pytest.mark.browser

WRONG = "frw-wrong-key-9b2e7d1c4a6f3e05"
STATE = "application/vnd.jupyter.widget-state+json"

SETUP = """
import logging, os, sys
# Every log line of the kernel (the package's, gRPC's, asyncio's) lands in the notebook.
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, force=True)
import flyte_run_widget as frw
key = open({token_file!r}).read().strip()
os.environ["FLYTE_RUN_WIDGET_API_KEY"] = key  # as a user might have it set
cfg = frw.init({endpoint!r}, ca_cert={cert!r}, api_key=key, project="proj", domain="development")
cfg
"""

GOOD = """
def hello(n: int) -> int:
    import os
    for k, v in sorted(os.environ.items()):  # all the task was given
        print(f"{k}={v}", flush=True)
    # Last: a saved widget's snapshot keeps the log's last 20 lines.
    print("hello from the task", n, flush=True)
    return n

run = frw.run(hello, n=3)
run
"""

BAD = """
def broken() -> None:
    print("about to fail", flush=True)
    raise RuntimeError("deliberate failure")

bad = frw.run(broken)
bad
"""

SHOW = """
run.wait()
bad.wait()
print(repr(run), repr(bad), run.url)
print(cfg)
run.show_logs(max_lines=1000)
bad.show_logs(max_lines=1000)
display(run.widget())
frw.Run.get(run.name)
"""

WRONG_KEY = """
import traceback
from flyte_run_widget.errors import AuthenticationError
wrong = open({wrong_file!r}).read().strip()
wrong_cfg = frw.init({endpoint!r}, ca_cert={cert!r}, api_key=wrong, project="proj")
print(wrong_cfg)
try:
    list(frw.Run.listall())
except AuthenticationError as e:
    print("refused:", e)
    print(repr(e))
    traceback.print_exc()
"""

UNCAUGHT = """
frw.Run.get(run.name)  # the wrong key again, the error left to the notebook
"""


def _needles(secret: str) -> list[str]:
    """The secret and forms a careless implementation might leave: its random half, the
    base64 of it and of the header carrying it."""
    return [
        secret,
        secret[-16:],
        base64.b64encode(secret.encode()).decode(),
        base64.b64encode(f"Bearer {secret}".encode()).decode(),
    ]


def _leaks(text: str) -> list[str]:
    """The secrets in ``text``: the key, the wrong key, and the secret in the service's own
    environment (which its tasks, printing theirs, must not see)."""
    return [n for s in (TOKEN, WRONG, SECRET) for n in _needles(s) if n in text]


def test_saved_notebook_and_page_hold_no_api_key(lab: Lab, exposed: tuple[str, Path], tmp_path: Path) -> None:
    endpoint, cert = exposed
    token_file = tmp_path / "token"
    assert token_file.read_text().strip() == TOKEN, "the exposed fixture's token changed"
    assert token_file.stat().st_mode & 0o077 == 0, "the token file is readable by others"
    wrong_file = tmp_path / "wrong-key"
    wrong_file.write_text(WRONG + "\n")
    wrong_file.chmod(0o600)

    fill = {
        "endpoint": endpoint,
        "cert": str(cert),
        "token_file": str(token_file),
        "wrong_file": str(wrong_file),
    }
    sources = [SETUP.format(**fill), GOOD, BAD, SHOW, WRONG_KEY.format(**fill), UNCAUGHT]
    for src in sources:
        assert not _leaks(src), "a secret in the cell source would make the check meaningless"
    nb = lab.write_notebook("secrets", [code_cell(src.strip() + "\n") for src in sources])
    lab.open(nb)
    lab.run_all()

    # Four widgets: the good run, the failing run, the good run's widget displayed again, and the
    # good run fetched by name.
    phases = lambda: lab.page.eval_on_selector_all(BADGE, "(els) => els.map((e) => e.dataset.phase)")  # noqa: E731
    lab.wait_for(
        lambda: phases() == ["succeeded", "failed", "succeeded", "succeeded"],
        "phases succeeded, failed, succeeded, succeeded (they are {})",
        90,
        detail=phases,
    )
    lab.wait_for(
        lambda: lab.page.eval_on_selector_all(
            COUNT, "(els) => els.length === 4 && els.every((e) => e.textContent.includes('complete'))"
        ),
        "every log to be complete ({})",
        30,
        detail=lambda: lab.page.eval_on_selector_all(COUNT, "(els) => els.map((e) => e.textContent)"),
    )
    counts = lab.execution_counts
    lab.wait_for(
        lambda: all(c is not None for c in counts()) and lab.kernel_status() == "idle",
        "every cell to run (counts {})",
        60,
        detail=counts,
    )
    widgets = "\n".join(lab.page.eval_on_selector_all(FRW, "(els) => els.map((e) => e.textContent)"))
    assert "hello from the task 3" in widgets, f"the task's line is not shown; {lab.screenshot('no-line')}"
    assert "deliberate failure" in widgets, f"the failure is not shown; {lab.screenshot('no-failure')}"
    # textContent: JupyterLab does not lay out cells scrolled out of view, innerText skips them.
    outputs = "\n".join(
        lab.page.eval_on_selector_all(".jp-OutputArea", "(els) => els.map((e) => e.textContent)")
    )
    assert "refused:" in outputs and "AuthenticationError" in outputs, (
        f"the wrong key was not refused in view; {lab.screenshot('no-refusal')}"
    )
    run_names = lab.page.eval_on_selector_all(
        ".frw .frw-name", "(els) => els.map((e) => e.textContent.trim())"
    )
    lab.screenshot("errors")
    lab.page.eval_on_selector(FRW, "(e) => e.scrollIntoView()")
    lab.page.wait_for_timeout(300)
    lab.screenshot("widgets")

    # The page itself: what it shows and what it holds.
    text = lab.page.evaluate("() => document.body.innerText + '\\n' + document.body.textContent")
    markup = lab.page.evaluate("() => document.body.innerHTML")
    assert not _leaks(text), f"the page shows a secret: {_leaks(text)}"
    assert not _leaks(markup), f"the page's markup holds a secret: {_leaks(markup)}"

    # Saved from the browser, widget state included.
    lab.save()
    raw = (lab.server.root / nb).read_text()
    saved = json.loads(raw)
    state = saved["metadata"].get("widgets", {}).get(STATE)
    assert state and state.get("state"), "saveState is on but no widget state was saved"
    state_text = json.dumps(state)
    for name in set(run_names):
        assert name and name in state_text, f"run {name!r} is not in the saved widget state"
    assert len(set(run_names)) == 2, f"run names shown: {run_names}"
    for expected in ("hello from the task 3", "deliberate failure", "refused:", "AuthenticationError"):
        assert expected in raw, f"{expected!r} is not in the saved notebook: the save missed output"
    errors = [o for c in saved["cells"] for o in c["outputs"] if o.get("output_type") == "error"]
    assert [o["ename"] for o in errors] == ["AuthenticationError"], errors
    html = [
        "".join(o["data"]["text/html"])  # nbformat keeps multi-line text as a list of lines
        for c in saved["cells"]
        for o in c["outputs"]
        if "text/html" in o.get("data", {})
    ]
    for name in set(run_names):
        assert any(f"Run {name}" in h for h in html), f"no static HTML snapshot of run {name} was saved"
    assert not _leaks(raw), f"the saved notebook holds a secret: {_leaks(raw)}"

    # The kernels' stderr (gRPC's own logging among it) goes to the Jupyter server's log.
    server_log = lab.server.log_path.read_text(errors="replace")
    assert not _leaks(server_log), f"the Jupyter server log holds a secret: {_leaks(server_log)}"
