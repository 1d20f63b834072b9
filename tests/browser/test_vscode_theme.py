"""The run widget under VS Code's theme signals, in Chromium: a page shaped like VS Code's notebook
output webview (``body.vscode-dark`` / ``body.vscode-light`` and ``--vscode-*`` variables on the
root) loading the shipped bundle, static/widget.{js,css}. The widget's colours must be the
editor's, and its text must keep its contrast, whatever the system's colour scheme says.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import ARTIFACTS, REPO

pytestmark = pytest.mark.browser

STATIC = REPO / "flyte_run_widget" / "static"
ORIGIN = "http://vscode-webview.test"

# VS Code's default themes (Dark Modern, Light Modern): the variables a notebook webview gets.
DARK = {
    "--vscode-editor-background": "#1f1f1f",
    "--vscode-editor-foreground": "#cccccc",
    "--vscode-descriptionForeground": "#9d9d9d",
    "--vscode-textCodeBlock-background": "#2b2b2b",
    "--vscode-textLink-foreground": "#4daafc",
    "--vscode-terminal-ansiRed": "#f14c4c",
}
LIGHT = {
    "--vscode-editor-background": "#ffffff",
    "--vscode-editor-foreground": "#3b3b3b",
    "--vscode-descriptionForeground": "#3b3b3b",
    "--vscode-textCodeBlock-background": "#f8f8f8",
    "--vscode-textLink-foreground": "#005fb8",
    "--vscode-terminal-ansiRed": "#cd3131",
}
# What a page may also hold: JupyterLab's light variables (VS Code's must win over them).
JP_LIGHT = {"--jp-layout-color1": "#ffffff", "--jp-ui-font-color1": "rgba(0, 0, 0, 0.87)"}

PAGE = """<!doctype html>
<html style="{style}"><head><link rel="stylesheet" href="/widget.css"></head>
<body class="{body}"><div id="out"></div>
<script type="module">
import widget from '/widget.js'
const attrs = {{
  run_name: 'r-theme', run_url: '', task_name: 'tasks.train', phase: 'failed', raw_phase: 6,
  start_ms: Date.now() - 5000, end_ms: Date.now(), now_ms: Date.now(), attempts: 1,
  error: {{ kind: 'USER', code: 'ValueError', message: 'bad input' }}, outputs: '',
  connection: {{ state: 'connected', message: '' }}, busy: '', max_lines: 1000, log_attempts: [1],
  notice: '', sign_in: {{}}, selected: '', tree_size: 0, transport: 'binary', outbox: '',
}}
const handlers = new Map()
const model = {{
  get: (k) => attrs[k],
  set() {{}}, save_changes() {{}}, send() {{}},
  on(e, fn) {{ if (!handlers.has(e)) handlers.set(e, new Set()); handlers.get(e).add(fn) }},
  off(e, fn) {{ handlers.get(e)?.delete(fn) }},
}}
widget.initialize({{ model }})
widget.render({{ model, el: document.getElementById('out') }})
// One log batch as the kernel sends it: an ANSI red line, a plain one, a system line.
const texts = ['\\x1b[31mred line\\x1b[0m', 'plain line', 'exited with code 1']
const joined = texts.join('')
const offsets = new Uint32Array(texts.length + 1)
texts.forEach((t, i) => {{ offsets[i + 1] = offsets[i] + t.length }})
const ts = new Float64Array(texts.map((_, i) => 1700000000000 + i))
const origin = new Uint8Array([1, 1, 0])
const msg = {{ type: 'logs', attempt: 1, first: 0, count: 3, done: true }}
const buffers = [new TextEncoder().encode(joined), offsets, ts, origin].map((a) => new DataView(a.buffer))
for (const fn of handlers.get('msg:custom') ?? []) fn(msg, buffers)
</script></body></html>
"""


def _rgb(css: str) -> tuple[float, float, float]:
    """An rgb()/rgba() computed colour as 0..1 channels (alpha blended over the widget's bg is
    not needed: the tested colours are opaque)."""
    inner = css[css.index("(") + 1 : css.index(")")].replace(",", " ").replace("/", " ").split()
    return (int(inner[0]) / 255, int(inner[1]) / 255, int(inner[2]) / 255)


def _hex(color: str) -> tuple[float, float, float]:
    return tuple(int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]


def contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """WCAG 2 contrast ratio."""

    def lum(c: tuple[float, float, float]) -> float:
        lin = [x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def open_page(browser: Any, body: str, variables: dict[str, str], scheme: str) -> Any:
    context = browser.new_context(viewport={"width": 900, "height": 700}, color_scheme=scheme)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    style = ";".join(f"{k}:{v}" for k, v in variables.items())
    html = PAGE.format(style=style, body=body)

    def serve(route: Any) -> None:
        path = route.request.url.removeprefix(ORIGIN)
        if path in ("/widget.js", "/widget.css"):
            kind = "text/javascript" if path.endswith(".js") else "text/css"
            route.fulfill(body=(STATIC / path[1:]).read_text(), content_type=kind)
        else:
            route.fulfill(body=html, content_type="text/html")

    page.route(f"{ORIGIN}/**", serve)
    page.goto(f"{ORIGIN}/")
    page.wait_for_selector(".frw .frw-row", timeout=15_000)
    assert errors == [], errors
    return page


def colours(page: Any) -> dict[str, str]:
    return dict(
        page.evaluate(
            """() => {
              const get = (sel, prop) => getComputedStyle(document.querySelector(sel))[prop]
              const row = [...document.querySelectorAll('.frw-row')].find((r) => r.textContent === 'red line')
              return {
                bg: get('.frw', 'backgroundColor'), fg: get('.frw', 'color'),
                scheme: get('.frw', 'colorScheme'), task: get('.frw-task', 'color'),
                row: get('.frw-row', 'color'), red: getComputedStyle(row.querySelector('span')).color,
                errBg: get('.frw-error', 'backgroundColor'), errFg: get('.frw-error', 'color'),
                bar: get('.frw-logbar', 'backgroundColor'),
              }
            }"""
        )
    )


@pytest.mark.parametrize(
    ("body", "theme", "scheme", "extra"),
    [
        ("vscode-dark", DARK, "light", {}),  # the system says light: VS Code's theme wins
        ("vscode-light", LIGHT, "dark", {}),
        ("vscode-dark", DARK, "dark", JP_LIGHT),  # JupyterLab's variables on the page lose
    ],
    ids=["dark", "light", "dark-with-jp-vars"],
)
def test_widget_follows_vscode_theme(browser: Any, body: str, theme: dict, scheme: str, extra: dict) -> None:
    page = open_page(browser, body, {**extra, **theme}, scheme)
    try:
        c = colours(page)
        bg = _rgb(c["bg"])
        assert bg == _hex(theme["--vscode-editor-background"]), c
        assert _rgb(c["fg"]) == _hex(theme["--vscode-editor-foreground"]), c
        assert _rgb(c["bar"]) == _hex(theme["--vscode-textCodeBlock-background"]), c
        assert _rgb(c["red"]) == _hex(theme["--vscode-terminal-ansiRed"]), c
        assert c["scheme"] == ("dark" if body == "vscode-dark" else "light"), c
        # Text stays readable on the editor's background: body text, secondary text, the error.
        assert contrast(_rgb(c["fg"]), bg) >= 4.5, c
        assert contrast(_rgb(c["row"]), bg) >= 4.5, c
        assert contrast(_rgb(c["task"]), bg) >= 4.5, c
        assert contrast(_rgb(c["errFg"]), _rgb(c["errBg"])) >= 4.5, c
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"vscode-{body}-{scheme}.png"))
    finally:
        page.context.close()


@pytest.mark.parametrize(("body", "scheme"), [("vscode-dark", "light"), ("vscode-light", "dark")])
def test_theme_class_alone_picks_the_palette(browser: Any, body: str, scheme: str) -> None:
    """A VS Code page whose variables did not arrive: the class still decides light or dark."""
    page = open_page(browser, body, {}, scheme)
    try:
        c = colours(page)
        dark = body == "vscode-dark"
        assert c["scheme"] == ("dark" if dark else "light"), c
        bg, fg = _rgb(c["bg"]), _rgb(c["fg"])
        assert (sum(bg) / 3 < 0.3) == dark, c
        assert contrast(fg, bg) >= 7, c
        assert contrast(_rgb(c["errFg"]), _rgb(c["errBg"])) >= 4.5, c
    finally:
        page.context.close()
