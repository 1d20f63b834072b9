/**
 * The log view: a virtualised list over one attempt's LineBuffer.
 *
 *     const view = new LogView({ store, send: (m) => model.send(m), name: () => 'my-run' })
 *     el.append(view.el); ...; view.destroy()
 *
 * - Fixed row height; only the visible rows plus an overscan exist in the DOM, and a spacer
 *   gives the scroll height (scaled down past MAX_SCROLL_PX, which browsers cannot exceed).
 * - DOM work happens once per animation frame however many batches arrive in between, and at
 *   most every RENDER_INTERVAL_MS while lines stream in.
 * - Follows the tail until the user scrolls up; "↓ Follow" returns to it.
 */
import { appendAnsi, stripAnsi } from './ansi.js'
import { formatCount, h, show } from './dom.js'
import { ViewIndex } from './viewindex.js'

export const ROW_HEIGHT = 18
export const OVERSCAN = 8
export const DEFAULT_HEIGHT = 320
export const MAX_SCROLL_PX = 4000000
const FRAME_BUDGET_MS = 8
// While lines stream in, rows are redrawn at most this often (what the user does is drawn in the
// next frame): each redraw lays out and paints a viewport of new text.
export const RENDER_INTERVAL_MS = 100
const SYSTEM = 2

const pad = (n, w = 2) => String(n).padStart(w, '0')

export function formatTimestamp(ms) {
  if (!(ms > 0)) return ''.padEnd(12)
  const d = new Date(ms)
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`
}

export class LogView {
  /**
   * @param {object} o
   * @param {import('./store.js').LogStore} o.store  the model-level log buffers
   * @param {(msg: object) => void} o.send           message to the kernel
   * @param {() => string} [o.name]                  run name, for the download file name
   * @param {object} [o.env]  requestFrame / cancelFrame / setTimeout / clearTimeout / now /
   *                          clipboard overrides (tests)
   */
  constructor({ store, send, name = () => 'run', env = {} }) {
    this.store = store
    this.send = send
    this.name = name
    const g = globalThis
    this.env = {
      requestFrame: env.requestFrame ?? ((fn) => g.requestAnimationFrame(fn)),
      cancelFrame: env.cancelFrame ?? ((id) => g.cancelAnimationFrame(id)),
      setTimeout: env.setTimeout ?? ((fn, ms) => g.setTimeout(fn, ms)),
      clearTimeout: env.clearTimeout ?? ((id) => g.clearTimeout(id)),
      now: env.now ?? (() => g.performance.now()),
    }
    this.attempt = null
    this.pinned = false
    this.index = null
    this.query = ''
    this.showTs = false
    this.showSystem = true
    this.following = true
    this.epoch = 0 // bumped when every row must be redrawn
    this.lastBase = 0
    this.maxScroll = 0
    this.pool = []
    this.frameId = null
    this.urgent = true
    this.renderedAt = -Infinity
    this.shownRows = 0
    this.timers = new Set()
    this.requested = new Set()
    this.attemptsShown = ''
    this.build()
    this.unsubscribe = store.subscribe((attempt) => {
      if (attempt === 'reset') {
        this.requested.clear()
        this.attempt = null
        this.pinned = false
        this.resetIndex()
        this.selectAttempt(this.latestAttempt(), false)
        this.invalidate()
      } else if (attempt === null) this.invalidate()
      else if (attempt === this.attempt || !this.pinned) this.invalidate(true)
    })
    this.hidden = false
    if (typeof g.ResizeObserver === 'function') {
      // A hidden viewport (display:none while the host re-lays out, a collapsed output) reads
      // scrollTop 0 and ignores writes: rendering then would misplace the rows, so wait.
      // Its height is also remembered here (layout is clean in this callback), so a frame never
      // reads clientHeight while the page's layout is dirty, which would force an extra layout.
      this.resizeObserver = new g.ResizeObserver((entries) => {
        const rect = entries[entries.length - 1].contentRect
        this.hidden = rect.width === 0 && rect.height === 0
        this.viewH = this.hidden ? 0 : this.viewport.clientHeight || rect.height
        if (!this.hidden) this.invalidate()
      })
      this.resizeObserver.observe(this.viewport)
    }
    this.selectAttempt(this.latestAttempt(), false)
    this.flush()
  }

  build() {
    this.attemptSelect = h('select', {
      class: 'frw-attempt-select',
      'aria-label': 'Attempt',
      onchange: () => this.selectAttempt(Number(this.attemptSelect.value), true),
    })
    this.filterInput = h('input', {
      class: 'frw-filter',
      type: 'search',
      placeholder: 'Filter',
      'aria-label': 'Filter log lines',
      spellcheck: 'false',
      oninput: () => this.setFilter(this.filterInput.value),
    })
    this.tsToggle = h('input', { type: 'checkbox', onchange: () => this.setShowTimestamps(this.tsToggle.checked) })
    this.sysToggle = h('input', { type: 'checkbox', checked: true, onchange: () => this.setShowSystem(this.sysToggle.checked) })
    this.countEl = h('span', { class: 'frw-count', 'aria-live': 'off' })
    this.copyBtn = h('button', { type: 'button', class: 'frw-btn frw-small', title: 'Copy the lines shown', onclick: () => this.copy() }, 'Copy')
    this.downloadBtn = h('button', { type: 'button', class: 'frw-btn frw-small', title: 'Download the lines shown as a .log file', onclick: () => this.download() }, 'Download')
    this.spacer = h('div', { class: 'frw-spacer' })
    this.rowsEl = h('div', { class: 'frw-rows' })
    this.emptyEl = h('div', { class: 'frw-empty' })
    this.viewport = h('div', {
      class: 'frw-viewport',
      tabindex: '0',
      role: 'log',
      'aria-label': 'Run logs',
      onscroll: () => this.onScroll(),
    }, this.spacer, this.rowsEl)
    this.followBtn = h('button', {
      type: 'button',
      class: 'frw-btn frw-follow',
      title: 'Jump to the latest line and keep following',
      onclick: () => this.follow(),
    }, '↓ Follow')
    show(this.followBtn, false)
    this.el = h('div', { class: 'frw-logs' },
      h('div', { class: 'frw-logbar' },
        this.attemptSelect,
        this.filterInput,
        h('label', { class: 'frw-toggle' }, this.tsToggle, 'Timestamps'),
        h('label', { class: 'frw-toggle' }, this.sysToggle, 'System lines'),
        this.countEl,
        h('span', { class: 'frw-grow' }),
        this.copyBtn,
        this.downloadBtn),
      h('div', { class: 'frw-logbox' }, this.viewport, this.emptyEl, this.followBtn))
  }

  // ---- state changes -------------------------------------------------------------------------

  latestAttempt() {
    const attempts = this.store.attempts()
    return attempts.length ? attempts[attempts.length - 1] : null
  }

  /** Show `attempt`'s log; `byUser` pins it (new attempts no longer switch the view). */
  selectAttempt(attempt, byUser) {
    if (attempt === null || Number.isNaN(attempt)) return
    this.pinned = byUser && attempt !== this.latestAttempt()
    if (attempt !== this.attempt) {
      this.attempt = attempt
      this.following = true
      this.resetIndex()
    }
    this.requestMissing(attempt)
    this.invalidate()
  }

  /** Ask the kernel to replay what this page does not hold (once per attempt per view). */
  requestMissing(attempt) {
    if (this.requested.has(attempt)) return
    const buf = this.store.buffers.get(attempt)
    if (buf?.done) return
    this.requested.add(attempt)
    this.send({ type: 'logs_request', attempt, from: buf ? buf.end : 0 })
  }

  resetIndex() {
    const buf = this.attempt === null ? null : this.store.buffer(this.attempt)
    this.index = buf ? new ViewIndex(buf, { query: this.query, showSystem: this.showSystem }) : null
    this.lastBase = this.index ? this.index.base : 0
    this.epoch++
  }

  setFilter(query) {
    if (query === this.query) return
    this.query = query
    this.following = true
    this.resetIndex()
    this.invalidate()
  }

  setShowSystem(on) {
    this.showSystem = on
    this.sysToggle.checked = on
    this.resetIndex()
    this.invalidate()
  }

  setShowTimestamps(on) {
    this.showTs = on
    this.tsToggle.checked = on
    this.epoch++
    this.invalidate()
  }

  follow() {
    this.following = true
    this.flush()
  }

  onScroll() {
    const top = this.viewport.scrollTop
    if (this.lastScrollSet !== undefined && Math.abs(top - this.lastScrollSet) < 1) return
    this.lastScrollSet = undefined
    this.following = top >= this.maxScroll - ROW_HEIGHT / 2
    this.invalidate()
  }

  setScrollTop(top) {
    this.viewport.scrollTop = top
    this.lastScrollSet = this.viewport.scrollTop
  }

  // ---- rendering -----------------------------------------------------------------------------

  /** Draw in the next frame; `linesOnly` (new lines arrived) may wait for RENDER_INTERVAL_MS. */
  invalidate(linesOnly = false) {
    if (!linesOnly) this.urgent = true
    if (this.frameId === null && !this.destroyed) {
      this.frameId = this.env.requestFrame(() => {
        this.frameId = null
        this.frame()
      })
    }
  }

  /** Render now (tests; and the Follow button, which should feel instant). */
  flush() {
    if (this.frameId !== null) this.env.cancelFrame(this.frameId)
    this.frameId = null
    this.urgent = true
    this.frame()
  }

  frame() {
    if (this.destroyed) return
    const now = this.env.now()
    if (!this.urgent && this.shownRows > 0 && now - this.renderedAt < RENDER_INTERVAL_MS) {
      this.invalidate(true) // only new lines, and rows were drawn moments ago: the first come at once
      return
    }
    this.urgent = false
    this.renderedAt = now
    if (!this.pinned) {
      const latest = this.latestAttempt()
      if (latest !== null && latest !== this.attempt) {
        this.attempt = latest
        this.following = true
        this.resetIndex()
      }
    }
    this.renderAttempts()
    const done = this.index ? this.index.scan(this.env.now() + FRAME_BUDGET_MS, this.env.now) : true
    if (this.hidden) {
      this.renderCount() // rows wait until the viewport is visible again
      if (!done) this.invalidate()
      return
    }
    this.render()
    if (!done) this.invalidate()
  }

  renderAttempts() {
    const attempts = this.store.attempts()
    const key = `${attempts.join(',')}:${this.attempt}`
    if (key === this.attemptsShown) return
    this.attemptsShown = key
    this.attemptSelect.replaceChildren(
      ...attempts.map((a) => h('option', { value: a, selected: a === this.attempt }, `Attempt ${a}`)))
    show(this.attemptSelect, attempts.length > 1)
  }

  viewHeight() {
    return this.viewH || this.viewport.clientHeight || DEFAULT_HEIGHT
  }

  render() {
    const index = this.index
    const rows = index ? index.length : 0
    this.shownRows = rows
    const viewH = this.viewHeight()
    const total = rows * ROW_HEIGHT
    const virtual = Math.min(total, MAX_SCROLL_PX)
    const maxVirtual = Math.max(0, virtual - viewH)
    const maxReal = Math.max(0, total - viewH)
    const scale = maxVirtual > 0 ? maxReal / maxVirtual : 1
    this.spacer.style.height = `${virtual}px`
    this.maxScroll = maxVirtual

    const base = index ? index.base : 0
    if (this.following) {
      this.setScrollTop(maxVirtual)
    } else if (base > this.lastBase) {
      // Lines left the front of the buffer: keep the rows the user is reading in place.
      this.setScrollTop(Math.max(0, this.viewport.scrollTop - ((base - this.lastBase) * ROW_HEIGHT) / scale))
    }
    this.lastBase = base
    const scrollTop = this.following ? maxVirtual : Math.min(this.viewport.scrollTop, maxVirtual)
    const pos = scrollTop * scale
    const first = Math.max(0, Math.floor(pos / ROW_HEIGHT) - OVERSCAN)
    const last = Math.min(rows, Math.ceil((pos + viewH) / ROW_HEIGHT) + OVERSCAN)
    this.rowsEl.style.transform = `translateY(${Math.round(scrollTop + first * ROW_HEIGHT - pos)}px)`

    const n = Math.max(0, last - first)
    while (this.pool.length < n) {
      const row = h('div', { class: 'frw-row' })
      this.pool.push(row)
      this.rowsEl.append(row)
    }
    while (this.pool.length > n) this.pool.pop().remove()
    for (let i = 0; i < n; i++) this.fillRow(this.pool[i], index.seqAt(first + i))

    show(this.followBtn, !this.following && rows > 0)
    this.renderEmpty(rows)
    this.renderCount()
  }

  fillRow(row, seq) {
    if (row.frwSeq === seq && row.frwEpoch === this.epoch) return
    row.frwSeq = seq
    row.frwEpoch = this.epoch
    const buf = this.index.buffer
    row.className = buf.originAt(seq) === SYSTEM ? 'frw-row frw-sys' : 'frw-row'
    row.replaceChildren()
    if (this.showTs) row.append(h('span', { class: 'frw-ts' }, formatTimestamp(buf.tsAt(seq))))
    appendAnsi(row, buf.textAt(seq))
  }

  renderEmpty(rows) {
    let text = ''
    if (rows === 0) {
      if (this.index && !this.index.complete) text = 'Filtering…'
      else if (this.index && this.index.buffer.size > 0) text = 'No lines match.'
      else text = this.index?.buffer.done ? 'This attempt logged nothing.' : 'No log lines yet.'
    }
    this.emptyEl.textContent = text
    show(this.emptyEl, rows === 0)
  }

  renderCount() {
    const index = this.index
    if (!index) {
      this.setCount('')
      return
    }
    const buf = index.buffer
    const lines = buf.size === 1 ? '1 line' : `${formatCount(buf.size)} lines`
    let text = index.all ? lines : `${formatCount(index.length)} of ${lines}`
    if (buf.dropped > 0) text += ` · ${formatCount(buf.dropped)} older dropped`
    if (!index.complete) text += ' · filtering…'
    else if (buf.done) text += ' · complete'
    this.setCount(text)
  }

  setCount(text) {
    if (text === this.countText) return // unchanged: no new text node, nothing to lay out
    this.countText = text
    this.countEl.textContent = text
  }

  // ---- copy and download ---------------------------------------------------------------------

  /** The lines shown (filter and toggles applied) as plain text, ANSI stripped. */
  shownText() {
    const index = this.index
    if (!index) return ''
    while (!index.complete) index.scan(Infinity)
    const buf = index.buffer
    const out = new Array(index.length)
    for (let i = 0; i < out.length; i++) {
      const seq = index.seqAt(i)
      const text = stripAnsi(buf.textAt(seq))
      out[i] = this.showTs ? `${formatTimestamp(buf.tsAt(seq))} ${text}` : text
    }
    return out.length ? `${out.join('\n')}\n` : ''
  }

  flash(button, label, original) {
    button.textContent = label
    const id = this.env.setTimeout(() => {
      this.timers.delete(id)
      button.textContent = original
    }, 1500)
    this.timers.add(id)
  }

  async copy() {
    const text = this.shownText()
    const lines = this.index ? this.index.length : 0
    let ok
    try {
      await navigator.clipboard.writeText(text)
      ok = true
    } catch {
      ok = copyWithTextarea(text)
    }
    if (this.destroyed) return
    this.flash(this.copyBtn, ok ? `Copied ${formatCount(lines)}` : 'Copy blocked: use Download', 'Copy')
  }

  download() {
    const text = this.shownText()
    const blob = new Blob([text], { type: 'text/plain;charset=utf-8' })
    const url = URL.createObjectURL(blob)
    const safeName = String(this.name() || 'run').replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80)
    const a = h('a', { href: url, download: `${safeName}-attempt-${this.attempt ?? 0}.log` })
    a.style.display = 'none'
    this.el.append(a)
    a.click()
    a.remove()
    const id = this.env.setTimeout(() => {
      this.timers.delete(id)
      URL.revokeObjectURL(url)
    }, 10000)
    this.timers.add(id)
    this.revokeLater = (this.revokeLater ?? []).concat(url)
  }

  destroy() {
    this.destroyed = true
    if (this.frameId !== null) this.env.cancelFrame(this.frameId)
    this.frameId = null
    for (const id of this.timers) this.env.clearTimeout(id)
    this.timers.clear()
    for (const url of this.revokeLater ?? []) URL.revokeObjectURL(url)
    this.resizeObserver?.disconnect()
    this.unsubscribe()
    this.el.remove()
  }
}

function copyWithTextarea(text) {
  const ta = document.createElement('textarea')
  ta.value = text
  ta.setAttribute('readonly', '')
  ta.style.position = 'fixed'
  ta.style.opacity = '0'
  document.body.append(ta)
  ta.select()
  let ok
  try {
    ok = document.execCommand('copy')
  } catch {
    ok = false
  }
  ta.remove()
  return ok
}
