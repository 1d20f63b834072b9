"""What bench/widget_browser.py runs in the page (JavaScript: reports, long tasks, the last line
seen) and in the kernel (the cells, the widget's send counted); bench/widgets_idle.py runs code in
the kernel with ``KERNEL_EXEC`` too."""

TAIL = " the quick brown fox jumps over the lazy dog 0123456789"  # 64 bytes + newline per line

# Installed before any page script runs: long tasks and long animation frames of the whole page.
INIT_SCRIPT = """
(() => {
  const b = (window.__frwBench = { long: [], loaf: [] })
  try {
    new PerformanceObserver((l) => { for (const e of l.getEntries()) b.long.push([e.startTime, e.duration]) })
      .observe({ type: 'longtask', buffered: true })
  } catch (e) { b.longError = String(e) }
  try {
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) b.loaf.push([e.startTime, e.duration, e.blockingDuration || 0])
    }).observe({ type: 'long-animation-frame', buffered: true })
  } catch (e) { b.loafError = String(e) }
})()
"""

# A per-frame probe: when the target line becomes visible, the largest gap between frames.
MONITOR = """
({ kind, target, t0 }) => {
  const b = window.__frwBench
  b.kind = kind; b.target = target; b.t0 = t0; b.seen = null; b.firstRow = null; b.complete = null
  b.maxGap = 0; b.maxGapAt = 0; b.gaps = []; b.frames = 0; b.tailChanged = Date.now(); b.tail = ''
  b.stop = false
  let prev = performance.now()
  const deepLast = (n) => { while (n && n.lastChild) n = n.lastChild; return n }
  const tick = () => {
    if (b.stop) return
    const now = performance.now()
    const gap = now - prev
    prev = now
    b.frames++
    if (gap > b.maxGap) { b.maxGap = gap; b.maxGapAt = Date.now() }
    if (gap > 50) b.gaps.push([Date.now(), gap])
    if (now - (b.pushed || 0) > 250 || (b.seen !== null && !b.pushedSeen)) {
      // Push the state out: the bench never has to ask a page that may be frozen for minutes.
      b.pushed = now; b.pushedSeen = b.seen !== null
      const o = performance.timeOrigin, t0 = b.t0 || 0
      const longest = b.long.reduce((m, e) => (o + e[0] >= t0 ? Math.max(m, e[1]) : m), 0)
      window.__frwReport({ seen: b.seen, firstRow: b.firstRow, complete: b.complete, count: b.count || '',
        tailChanged: b.tailChanged, tailNum: b.tailNum ?? null, frames: b.frames, at: Date.now(),
        heap: b.heap, longest, maxGap: b.maxGap })
      if (now - (b.heapAt || 0) > 2000 && performance.memory) {  // the getter is not free
        b.heapAt = now; b.heap = performance.memory.usedJSHeapSize
      }
    }
    if (kind === 'widget') {
      const vp = document.querySelector('.frw .frw-viewport')
      const rows = document.querySelectorAll('.frw .frw-row')
      if (rows.length && b.firstRow === null) b.firstRow = Date.now()
      if (b.seen === null && vp) {
        for (const r of rows) {
          if (r.textContent.startsWith(target)) {  // geometry (a forced layout) only for that row
            const box = vp.getBoundingClientRect()
            const rb = r.getBoundingClientRect()
            if (rb.top >= box.top - 1 && rb.bottom <= box.bottom + 1) { b.seen = Date.now(); break }
          }
        }
      }
      const c = document.querySelector('.frw .frw-count')
      b.count = c ? c.textContent : ''
      if (b.complete === null && b.count.includes('complete')) b.complete = Date.now()
    } else {
      const out = document.querySelector('.jp-Notebook .jp-Cell .jp-OutputArea-output')  // the print cell is the only cell
      if (out && b.firstRow === null) b.firstRow = Date.now()
      const last = deepLast(out)
      const text = last ? String(last.textContent).slice(-300) : ''
      if (text !== b.tail) {
        b.tail = text; b.tailChanged = Date.now()
        const m = text.match(/(\\d{8}) the quick[^\\n]*\\n?$/)
        if (m) b.tailNum = Number(m[1])
      }
      if (b.seen === null && text.includes(target)) b.seen = Date.now()
    }
    requestAnimationFrame(tick)
  }
  requestAnimationFrame(tick)
  return true
}
"""


# Run code in the page's kernel (idle by then) and return what it prints.
KERNEL_EXEC = """
async (code) => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel
  const f = k.requestExecute({ code, silent: false, store_history: false })
  let out = ''
  f.onIOPub = (msg) => {
    if (msg.header.msg_type === 'stream') out += msg.content.text
    if (msg.header.msg_type === 'error') out += 'ERROR ' + msg.content.ename + ': ' + msg.content.evalue
  }
  await f.done
  return out
}
"""

VIEW_STATE = """
() => {
  const vp = document.querySelector('.frw .frw-viewport')
  const rows = [...document.querySelectorAll('.frw .frw-row')].map((r) => r.textContent.slice(0, 8))
  return { scrollTop: vp && vp.scrollTop, scrollHeight: vp && vp.scrollHeight, clientHeight: vp && vp.clientHeight,
           rows: rows.length, first: rows[0], last: rows[rows.length - 1], visibility: document.visibilityState,
           focus: document.hasFocus(), frames: window.__frwBench.frames }
}
"""

WIDGET_CELL = """
import time as _time
import json as _json
from flyte_run_widget.notebook.widget import RunWidget as _RW
_bench = {{"sends": [], "widgets": []}}
if not hasattr(_RW, "_bench_orig_send"):
    _RW._bench_orig_send = _RW.send
def _bench_send(self, content, buffers=None):
    n = (content.get("count") or len(content.get("lines", ()))) if isinstance(content, dict) else 0
    _bench["sends"].append((_time.time(), n))
    if self not in _bench["widgets"]:
        _bench["widgets"].append(self)
    return _RW._bench_orig_send(self, content, buffers)
_RW.send = _bench_send

def print_lines(n: int) -> int:
    import sys
    w = sys.stdout.write
    tail = {tail!r}
    for s in range(0, n, 10000):
        w("".join([f"{{i:08d}}{{tail}}\\n" for i in range(s, min(n, s + 10000))]))
    sys.stdout.flush()
    return n
"""

# A cell of its own, so the screenshot shows the widget next to a short cell.
WIDGET_RUN_CELL = """_t_cell = _time.time(); _cpu_cell = _time.process_time()
run = frw.run(print_lines, n={n})
run
"""

WIDGET_STATS = """
import json as _json, time as _time
_w = _bench["widgets"][0] if _bench["widgets"] else run.widget()
_target = "{target}"
_last_ts = None
for _log in _w._logs.values():
    for _b in reversed(_log.blocks):  # column blocks, newest last
        _hits = [_i for _i in range(len(_b) - 1, -1, -1) if _b.texts[_i].startswith(_target)]
        if _hits:
            _last_ts = _b.stamps[_hits[0]]
            break
_s = _bench["sends"]
_per_sec = {{}}
for _t, _n in _s:
    _per_sec[int(_t)] = _per_sec.get(int(_t), 0) + 1
print(_json.dumps({{
    "t_cell": _t_cell, "last_line_ts_ms": _last_ts, "end_ms": _w.end_ms, "start_ms": _w.start_ms,
    "phase": _w.phase, "sends": len(_s), "lines_sent": sum(n for _, n in _s),
    "first_send": _s[0][0] if _s else None, "last_send": _s[-1][0] if _s else None,
    "max_sends_per_s": max(_per_sec.values()) if _per_sec else 0,
    "max_lines_per_send": max((n for _, n in _s), default=0),
    "kernel_total": {{a: l.total for a, l in _w._logs.items()}},
    "kernel_cpu_s": _time.process_time() - _cpu_cell,
}}))
"""

PRINT_CELL = """
import time as _time
_t_cell = _time.time(); _cpu_cell = _time.process_time()
import sys as _sys
_tail = {tail!r}
for _i in range({n}):
    print(f"{{_i:08d}}{{_tail}}")
_sys.stdout.flush()
_t_end = _time.time(); _cpu_end = _time.process_time()
import json as _json
with open({stats_file!r}, "w") as _f:
    _json.dump({{"t_cell": _t_cell, "t_end": _t_end, "kernel_cpu_s": _cpu_end - _cpu_cell}}, _f)
"""


# Lines in the output area at the end, and whether the rate-limit warning is shown.
PRINT_DOM = """
() => {
  const outs = [...document.querySelectorAll('.jp-Notebook .jp-Cell')][0]?.querySelectorAll('.jp-OutputArea-output') || []
  let lines = 0, warned = false, chars = 0
  for (const o of outs) {
    const t = o.textContent
    chars += t.length
    if (t.includes('IOPub data rate exceeded')) warned = true
    const m = t.match(/^\\d{8} the quick/gm)
    lines += m ? m.length : 0
  }
  return { outputs: outs.length, lines, warned, chars }
}
"""
