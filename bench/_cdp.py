"""Pages driven over a bare Chrome DevTools Protocol connection (bench/widget_browser.py's default
driver): Chromium launched with Playwright's switches, one websocket per page target, only the
Page, Runtime and Emulation domains.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lab import CHROMIUM_ARGS


def heap_mb(cdp: Any) -> float:
    return float(cdp.send("Runtime.getHeapUsage")["usedSize"]) / 2**20


class RawCDP:
    """A bare CDP client for one page target (websocket-client): only the Page, Runtime and
    Emulation domains, never Network, so the kernel's websocket frames are not copied out of the
    renderer to an automation driver (Playwright enables Network on every page it controls)."""

    def __init__(self, ws_url: str) -> None:
        import threading

        import websocket

        self.ws = websocket.create_connection(ws_url, suppress_origin=True, timeout=None)
        self.lock = threading.Lock()
        self.next_id = 0
        self.waiting: dict[int, Any] = {}
        self.results: dict[int, dict[str, Any]] = {}
        self.handlers: dict[str, Any] = {}
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                msg = json.loads(self.ws.recv())
            except Exception:
                for ev in list(self.waiting.values()):
                    ev.set()
                return
            if "id" in msg:
                self.results[msg["id"]] = msg
                ev = self.waiting.pop(msg["id"], None)
                if ev:
                    ev.set()
            elif msg.get("method") in self.handlers:
                self.handlers[msg["method"]](msg.get("params") or {})

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 120) -> dict[str, Any]:
        import threading

        with self.lock:
            self.next_id += 1
            i = self.next_id
            ev = self.waiting[i] = threading.Event()
            self.ws.send(json.dumps({"id": i, "method": method, "params": params or {}}))
        if not ev.wait(timeout) or i not in self.results:
            raise TimeoutError(f"CDP {method}: no answer in {timeout:.0f} s")
        msg = self.results.pop(i)
        if "error" in msg:
            raise RuntimeError(f"CDP {method}: {msg['error']}")
        return dict(msg.get("result") or {})

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()


class RawPage:
    """What the bench and tests/browser/conftest.py's Lab use of a Playwright page, over RawCDP."""

    def __init__(self, cdp: RawCDP) -> None:
        self.cdp = cdp

    def on(self, *_: Any) -> None:  # Lab's dialog/console hooks: not needed here
        pass

    def goto(self, url: str, **_: Any) -> None:
        self.cdp.send("Page.navigate", {"url": url})
        time.sleep(0.5)

    def evaluate(self, fn: str, arg: Any = None) -> Any:
        expr = f"({fn})({json.dumps(arg)})" if arg is not None else f"({fn})()"
        r = self.cdp.send(
            "Runtime.evaluate", {"expression": expr, "awaitPromise": True, "returnByValue": True}
        )
        if "exceptionDetails" in r:
            raise RuntimeError(str(r["exceptionDetails"].get("exception", r["exceptionDetails"]))[:500])
        return (r.get("result") or {}).get("value")

    def wait_for_timeout(self, ms: float) -> None:
        time.sleep(ms / 1000)

    def screenshot(self, path: str, **_: Any) -> None:
        import base64

        Path(path).write_bytes(base64.b64decode(self.cdp.send("Page.captureScreenshot")["data"]))


# Playwright's own Chromium switches that bear on scheduling and rendering (its chromiumSwitches
# and headless flags), so a raw page runs like a Playwright one minus the automation.
PLAYWRIGHT_SWITCHES = [
    "--disable-field-trial-config",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--disable-back-forward-cache",
    "--disable-ipc-flooding-protection",
    "--disable-hang-monitor",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--disable-component-extensions-with-background-pages",
    "--disable-default-apps",
    "--no-default-browser-check",
    "--disable-features=PaintHolding,MediaRouter,OptimizationHints,ThirdPartyStoragePartitioning",
    "--force-color-profile=srgb",
    "--password-store=basic",
    "--hide-scrollbars",
    "--mute-audio",
    "--blink-settings=primaryHoverType=2,availableHoverTypes=2,primaryPointerType=4,availablePointerTypes=4",
]


class RawContext:
    """A Chromium of its own (same binary and flags as the Playwright runs) with one page."""

    def __init__(self, chromium: str, viewport: dict[str, int]) -> None:
        import urllib.request

        self.dir = Path(tempfile.mkdtemp(prefix="frw-bench-chromium-"))
        self.proc = subprocess.Popen(
            [chromium, *PLAYWRIGHT_SWITCHES, *CHROMIUM_ARGS, "--remote-debugging-port=0", f"--user-data-dir={self.dir}",
             f"--window-size={viewport['width']},{viewport['height']}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        port_file = self.dir / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not open its DevTools port")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            target = next(t for t in json.loads(r.read()) if t.get("type") == "page")
        self.cdp = RawCDP(target["webSocketDebuggerUrl"])
        self.cdp.send("Page.enable")
        self.cdp.send("Runtime.enable")
        self.cdp.send(
            "Emulation.setFocusEmulationEnabled", {"enabled": True}
        )  # as Playwright: a focused page
        self.cdp.send(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": viewport["width"],
                "height": viewport["height"],
                "deviceScaleFactor": 1,
                "mobile": False,
            },
        )
        self.page = RawPage(self.cdp)

    def set_default_timeout(self, _: float) -> None:
        pass

    def add_init_script(self, source: str) -> None:
        self.cdp.send("Page.addScriptToEvaluateOnNewDocument", {"source": source})

    def expose_function(self, name: str, fn: Any) -> None:
        # a binding takes one string: the page-side function of that name sends JSON through it
        self.cdp.handlers["Runtime.bindingCalled"] = lambda p: fn(json.loads(p["payload"]))
        self.cdp.send("Runtime.addBinding", {"name": name + "Raw"})
        self.add_init_script(f"window.{name} = (o) => window.{name}Raw(JSON.stringify(o))")

    def start_tracing(self, categories: list[str]) -> None:
        self.cdp.send(
            "Tracing.start",
            {"transferMode": "ReturnAsStream", "traceConfig": {"includedCategories": categories}},
        )

    def stop_tracing(self) -> bytes:
        import threading

        done: dict[str, Any] = {}
        ev = threading.Event()
        self.cdp.handlers["Tracing.tracingComplete"] = lambda p: (done.update(p), ev.set())
        self.cdp.send("Tracing.end")
        if not ev.wait(120):
            raise TimeoutError("Tracing.end: no tracingComplete")
        chunks = []
        while True:
            r = self.cdp.send("IO.read", {"handle": done["stream"], "size": 4 << 20})
            chunks.append(r.get("data", "").encode())
            if r.get("eof"):
                break
        self.cdp.send("IO.close", {"handle": done["stream"]})
        return b"".join(chunks)

    def new_page(self) -> RawPage:
        return self.page

    def new_cdp_session(self, _: Any) -> RawCDP:
        return self.cdp

    def close(self) -> None:
        self.cdp.close()
        try:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
