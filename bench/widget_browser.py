"""Kernel → browser: N log lines (1,000,000 by default) through the widget in a real Chromium in
JupyterLab, against the same kind of lines printed into a plain cell output.

    python bench/widget_browser.py                  # widget 1M; baselines 100k (+ 1M, bounded)
    python bench/widget_browser.py --quick          # widget 100k; baselines 20k, no 1M baseline
    python bench/widget_browser.py --lines 300000 --baseline-lines 50000 --baseline-1m-timeout 60
    python bench/widget_browser.py --widget-only --trace   # + each long task broken down (Chrome trace)
    python bench/widget_browser.py --playwright     # pages driven by Playwright (the old way)

Driver: each scenario gets its own Chromium (Debian's, Playwright's launch switches) driven over a
bare CDP connection that enables only Page, Runtime and Emulation. Playwright enables the Network
domain on every page it controls, and Chromium then copies every websocket frame the page receives
(base64, on the page's main thread) to the driver: for 1M lines that cost ~4 CPU-s on 2 cores
(renderer, browser process, driver, this script) and made the page's main thread compete for CPU.
--playwright measures that way for comparison.

Scenarios, each in a fresh browser context, notebook and kernel:

  widget          a cell starts a task (a Python function writing N numbered 65-byte lines to
                  sys.stdout, 10,000 per write) on the embedded Run service and shows `run`
                  (the widget). JupyterLab with jupyter_server's default iopub limits.
  print           the baseline: a cell that `print`s the same lines one by one, on the same
                  JupyterLab server (default limits: ~1 MB/s of stream data, the excess dropped)
  print-unlimited the same cell on a second JupyterLab server with both iopub limits lifted, so
                  every line reaches the page; also tried with N lines and a bounded timeout

Figures (the browser's and the kernel's clocks are the same machine clock):

  last line visible   Date.now() in the first animation frame in which the line numbered N-1 is
                      in the DOM: in the widget, a row inside the viewport's visible rectangle;
                      in a plain output, the tail of the output area's text
  ... after service   from the service's timestamp of that line (the widget's wire form carries
                      it) or, for print, from the end of the kernel's print loop
  ... after cell      from the first statement of the cell (kernel time.time())
  longest task        the longest `longtask` entry (a PerformanceObserver installed before the
                      page loads) between cell start and last line visible; entries exist only
                      for tasks >= 50 ms, so the longest gap between animation frames is given
                      as well (it also sees rendering work and shorter stalls)
  JS heap             CDP Runtime.getHeapUsage at the end, and after a forced GC
  messages/s          RunWidget.send calls (wrapped in the kernel before the run), over the time
                      from first to last send, and the most in any one second
  CPU seconds         /proc: CPU used from run-all to last line visible by this bench's processes
                      (Chromium renderers, the rest of Chromium, kernel, jupyter_server, Run service
                      and its task) and by the rest of the machine (other processes)
  --trace             the page's main thread in a Chrome trace, cell start → last line visible:
                      every task's wall and thread CPU time; for each task ≥ 50 ms its trace events
                      by self time (GC, layout, paint, JS calls) and the JS functions sampled in it

Machine facts, a markdown table on stdout and in bench/results/raw/ with a JSON copy, and a
screenshot of the widget after the run there too; the headline figures in
bench/results/widget_browser.json (committed; see bench/_record.py).

JupyterLab, the kernelspec and Chromium come from tests/browser/conftest.py (reused, not copied);
the Run service is bench/_service.py's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lab import CHROMIUM_ARGS, JupyterServer, _chromium, chromium_version
from _record import Record
from _service import RAW, Service, machine, save
from _widget_browser_report import headline, report
from _widget_browser_scenarios import Bench, lift_iopub_limits


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="widget 100k lines, baselines 20k, no 1M baseline")
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--baseline-lines", type=int, default=100_000)
    p.add_argument("--baseline-1m-timeout", type=float, default=120, help="0 skips the N-line print baseline")
    p.add_argument("--timeout", type=float, default=180, help="widget and baseline timeout, s")
    p.add_argument("--skip-unlimited", action="store_true", help="no second server with iopub limits lifted")
    p.add_argument("--widget-only", action="store_true", help="no print baselines")
    p.add_argument(
        "--profile", action="store_true", help="CDP CPU profile of the widget page (adds overhead)"
    )
    p.add_argument(
        "--trace",
        action="store_true",
        help="Chrome trace of the widget page: each long task broken down (events, GC, JS samples)",
    )
    p.add_argument(
        "--playwright",
        action="store_true",
        help="drive the pages with Playwright (it copies every websocket frame to its driver) instead of "
        "a bare CDP connection",
    )
    p.add_argument(
        "--renice-renderer",
        type=int,
        default=None,
        metavar="N",
        help="experiment: nice value for the widget page's renderer threads (e.g. -10; needs CAP_SYS_NICE)",
    )
    args = p.parse_args()
    if args.quick:
        args.lines, args.baseline_lines, args.baseline_1m_timeout = 100_000, 20_000, 0

    chromium = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if chromium is None:  # not a broken benchmark: nothing to run it in
        print(
            "widget_browser: skipped (needs Debian's chromium and `pip install playwright`; "
            "never `playwright install`; FRW_CHROMIUM=/path picks another browser)"
        )
        return 0
    from importlib.metadata import version

    rec = Record("widget_browser")
    m = machine()
    m["chromium"] = chromium_version(chromium)
    m["jupyterlab"] = version("jupyterlab")
    m["jupyter_server"] = version("jupyter_server")
    RAW.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    tmp = Path(tempfile.mkdtemp(prefix="frw-bench-browser-"))
    results: list[dict[str, Any]] = []
    servers: list[JupyterServer] = []
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        bench = Bench(browser, RAW, stamp, profile=args.profile, trace=args.trace)
        bench.renice = args.renice_renderer
        if not args.playwright:
            bench.raw = chromium
        with Service(tmp / "service") as svc:
            lab_default = JupyterServer(tmp / "lab-default")
            servers.append(lab_default)
            lab_default.start()
            print(f"widget, {args.lines:,} lines …", file=sys.stderr)
            results.append(bench.widget(lab_default, svc.endpoint, args.lines, args.timeout))
            if not args.widget_only:
                print(f"print baseline, {args.baseline_lines:,} lines …", file=sys.stderr)
                results.append(bench.printed(lab_default, args.baseline_lines, args.timeout, "print"))
            lab_default.stop()
            if not args.skip_unlimited and not args.widget_only:
                lab_free = JupyterServer(tmp / "lab-unlimited")
                servers.append(lab_free)
                lift_iopub_limits(lab_free)
                lab_free.start()
                print(
                    f"print baseline, iopub limits lifted, {args.baseline_lines:,} lines …", file=sys.stderr
                )
                results.append(bench.printed(lab_free, args.baseline_lines, args.timeout, "print-unlimited"))
                if args.baseline_1m_timeout > 0:
                    print(
                        f"print baseline, limits lifted, {args.lines:,} lines, ≤ {args.baseline_1m_timeout:.0f} s …",
                        file=sys.stderr,
                    )
                    results.append(
                        bench.printed(lab_free, args.lines, args.baseline_1m_timeout, "print-unlimited")
                    )
                lab_free.stop()
        browser.close()
    finally:
        for s in servers:
            s.stop()
        pw.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    text = report(results, m, args)
    path = save("widget_browser", text, {"machine": m, "args": vars(args), "results": results})
    print(text)
    print(f"(saved {path})", file=sys.stderr)
    rec.write(headline(results))
    return 0


if __name__ == "__main__":
    os.environ.pop("ANYWIDGET_HMR", None)
    sys.exit(main())
