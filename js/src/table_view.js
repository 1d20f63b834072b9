/**
 * One view of a runs table: a toolbar (filter, phase, count, Abort selected), sortable column
 * headers and a virtualised body: only the rows in the viewport (plus a few) are in the DOM, so
 * 10,000 runs cost what 20 do. Text goes in as text only (dom.js); a click on a row asks the
 * kernel to open that run's widget below the table.
 *
 *     const view = new TableView({ model, store, env })   // env: requestFrame, cancelFrame, timers
 *     el.append(view.el) ... view.destroy()
 */
import { isTerminal, phaseInfo } from './badge.js'
import { formatCount, h, show } from './dom.js'
import { COLUMNS, formatDuration, formatStart, queryRows, visibleRange } from './table_query.js'

export const ROW_HEIGHT = 26
export const DEFAULT_HEIGHT = 360
export const ABORT_REASON = 'Aborted from the runs table'
const PHASES = ['queued', 'waiting_for_resources', 'initializing', 'running', 'succeeded', 'failed',
  'aborted', 'timed_out', 'paused', 'recovered']

export class TableView {
  constructor({ model, store, env = {} }) {
    const g = globalThis
    this.model = model
    this.store = store
    this.env = {
      requestFrame: env.requestFrame ?? ((fn) => g.requestAnimationFrame(fn)),
      cancelFrame: env.cancelFrame ?? ((id) => g.cancelAnimationFrame(id)),
      setInterval: env.setInterval ?? ((fn, ms) => g.setInterval(fn, ms)),
      clearInterval: env.clearInterval ?? ((id) => g.clearInterval(id)),
    }
    this.query = { text: '', phase: '', key: 'start', desc: true }
    this.selected = new Set()
    this.shown = []
    this.seen = { version: -1, query: null }
    this.frameId = null
    this.confirming = false
    this.pool = []

    this.title = h('span', { class: 'frwt-title' })
    this.filter = h('input', { class: 'frw-filter frwt-filter', type: 'search', placeholder: 'Filter name, task, creator',
      'aria-label': 'Filter runs', oninput: () => this.setQuery({ text: this.filter.value }) })
    this.phaseSelect = h('select', { class: 'frw-attempt-select frwt-phase', 'aria-label': 'Phase',
      onchange: () => this.setQuery({ phase: this.phaseSelect.value }) },
    h('option', { value: '' }, 'all phases'),
    ...PHASES.map((p) => h('option', { value: p }, phaseInfo(p).label)))
    this.count = h('span', { class: 'frw-count frwt-count' })
    this.abortBtn = h('button', { type: 'button', class: 'frw-btn frwt-abort', onclick: () => this.askAbort() }, 'Abort selected')
    this.yesBtn = h('button', { type: 'button', class: 'frw-btn frw-danger', onclick: () => this.sendAbort() }, 'Yes, abort')
    this.question = h('span', { class: 'frw-confirm-q' })
    this.confirmBox = h('span', { class: 'frw-confirm frwt-confirm', role: 'group', 'aria-label': 'Confirm abort' },
      this.question, this.yesBtn,
      h('button', { type: 'button', class: 'frw-btn', onclick: () => this.setConfirming(false) }, 'Cancel'))
    this.banner = h('div', { class: 'frw-banner' })
    this.notice = h('div', { class: 'frw-banner frw-notice' })

    this.selectAll = h('input', { type: 'checkbox', class: 'frwt-all', 'aria-label': 'Select all shown runs that can be aborted',
      onchange: () => this.toggleAll(this.selectAll.checked) })
    this.headers = COLUMNS.map((c) => h('button', { type: 'button', class: 'frwt-sort', 'data-key': c.key,
      onclick: () => this.sortBy(c.key) }, c.label))
    this.head = h('div', { class: 'frwt-grid frwt-head', role: 'row' }, h('span', {}, this.selectAll), ...this.headers)
    this.spacer = h('div', { class: 'frw-spacer' })
    this.body = h('div', { class: 'frwt-rows', role: 'rowgroup', onclick: (e) => this.onClick(e) })
    this.empty = h('div', { class: 'frw-empty' })
    this.viewport = h('div', { class: 'frwt-viewport', role: 'grid', onscroll: () => this.schedule() },
      this.spacer, this.body, this.empty)

    this.el = h('div', { class: 'frw frwt' }, this.banner, this.notice,
      h('div', { class: 'frw-logbar frwt-bar' }, this.title, this.filter, this.phaseSelect, this.count,
        h('span', { class: 'frw-grow' }), this.abortBtn, this.confirmBox),
      this.head, this.viewport)

    this.onModel = () => { this.updateChrome(); this.schedule(true) }
    this.traits = ['title', 'total', 'opened', 'busy', 'notice', 'connection']
    for (const name of this.traits) model.on(`change:${name}`, this.onModel)
    this.unsubscribe = store.subscribe(() => this.schedule())
    // Durations of runs still going tick once a second, without kernel traffic.
    this.ticker = this.env.setInterval(() => this.schedule(true), 1000)
    this.updateChrome()
    this.schedule()
  }

  get(name) {
    return this.model.get(name)
  }

  setQuery(change) {
    this.query = { ...this.query, ...change }
    this.viewport.scrollTop = 0
    this.schedule()
  }

  sortBy(key) {
    const desc = this.query.key === key ? !this.query.desc : key === 'start' || key === 'duration'
    this.setQuery({ key, desc })
  }

  schedule(force = false) {
    if (force) this.force = true
    if (this.frameId !== null) return
    this.frameId = this.env.requestFrame(() => {
      this.frameId = null
      this.render()
    })
  }

  /** Rows in the kernel's clock order, filtered and sorted; recomputed only when they changed. */
  rows() {
    const { version } = this.store
    const sortsByTime = this.query.key === 'duration'
    if (version !== this.seen.version || this.query !== this.seen.query || (this.force && sortsByTime)) {
      this.shown = queryRows(this.store.rows.values(), { ...this.query, now: this.store.kernelNow() })
      this.seen = { version, query: this.query }
      for (const name of this.selected) if (!this.store.rows.has(name)) this.selected.delete(name)
      this.updateChrome()
    }
    return this.shown
  }

  render() {
    const rows = this.rows()
    const force = this.force
    this.force = false
    const height = this.viewport.clientHeight || DEFAULT_HEIGHT
    this.spacer.style.height = `${rows.length * ROW_HEIGHT}px`
    const { first, last } = visibleRange(this.viewport.scrollTop, height, ROW_HEIGHT, rows.length)
    while (this.pool.length < last - first) this.pool.push(this.makeRow())
    const now = this.store.kernelNow()
    const opened = String(this.get('opened') ?? '')
    for (let i = 0; i < this.pool.length; i++) {
      const el = this.pool[i]
      const row = rows[first + i]
      if (!row) {
        if (el.isConnected) el.remove()
        continue
      }
      if (!el.isConnected) this.body.append(el)
      this.fillRow(el, row, now, opened, force)
    }
    this.body.style.transform = `translateY(${first * ROW_HEIGHT}px)`
    this.empty.textContent = !this.store.loaded ? 'Loading runs…' : this.store.rows.size ? 'No run matches the filter' : 'No runs'
    show(this.empty, rows.length === 0)
  }

  makeRow() {
    const check = h('input', { type: 'checkbox', class: 'frwt-check', 'aria-label': 'Select run' })
    const cells = COLUMNS.map((c) => h('span', { class: `frwt-cell frwt-${c.key}` }))
    const label = h('span', { class: 'frw-badge-label' })
    const badge = h('span', { class: 'frw-badge' }, h('span', { class: 'frw-dot', 'aria-hidden': 'true' }), label)
    cells[2].append(badge)
    const el = h('div', { class: 'frwt-grid frwt-row', role: 'row', title: 'Open this run below the table' },
      h('span', {}, check), ...cells)
    el.parts = { check, cells, badge, label }
    return el
  }

  fillRow(el, row, now, opened, force) {
    const { check, cells, badge, label } = el.parts
    const selected = this.selected.has(row.name)
    const isOpen = row.name === opened
    if (el.row === row && !force && el.selected === selected && el.isOpen === isOpen) return
    el.row = row
    el.selected = selected
    el.isOpen = isOpen
    el.dataset.name = row.name
    el.classList.toggle('frwt-open', isOpen)
    check.checked = selected
    check.disabled = isTerminal(row.phase)
    cells[0].textContent = row.name
    cells[1].textContent = row.task
    const info = phaseInfo(row.phase)
    badge.className = info.className
    badge.dataset.phase = info.key
    label.textContent = info.label
    cells[3].textContent = formatStart(row.start, now)
    cells[4].textContent = formatDuration(row, now)
    cells[5].textContent = row.user
  }

  onClick(event) {
    const rowEl = event.target.closest?.('.frwt-row')
    if (!rowEl || !rowEl.row) return
    const name = rowEl.row.name
    if (event.target.classList.contains('frwt-check')) {
      if (event.target.checked) this.selected.add(name)
      else this.selected.delete(name)
      this.updateChrome()
      this.schedule(true)
      return
    }
    this.model.send({ type: 'open', name })
  }

  toggleAll(on) {
    this.selected.clear()
    if (on) for (const row of this.rows()) if (!isTerminal(row.phase)) this.selected.add(row.name)
    this.updateChrome()
    this.schedule(true)
  }

  /** Selected runs that can still be aborted. */
  abortable() {
    const names = []
    for (const name of this.selected) {
      const row = this.store.rows.get(name)
      if (row && !isTerminal(row.phase)) names.push(name)
    }
    return names
  }

  askAbort() {
    if (this.abortable().length) this.setConfirming(true)
  }

  setConfirming(on) {
    this.confirming = on
    this.updateChrome()
    if (on) this.yesBtn.focus()
  }

  sendAbort() {
    const names = this.abortable()
    this.confirming = false
    if (names.length) this.model.send({ type: 'abort', names, reason: ABORT_REASON })
    this.selected.clear()
    this.selectAll.checked = false
    this.updateChrome()
    this.schedule(true)
  }

  updateChrome() {
    this.title.textContent = String(this.get('title') || 'Runs')
    const total = this.store.rows.size
    const shown = this.shown.length
    this.count.textContent = shown === total ? `${formatCount(total)} runs` : `${formatCount(shown)} of ${formatCount(total)} runs`
    const busy = String(this.get('busy') ?? '')
    const n = this.abortable().length
    if (n === 0) this.confirming = false
    this.abortBtn.textContent = busy ? `${busy[0].toUpperCase()}${busy.slice(1)}…` : n ? `Abort selected (${n})` : 'Abort selected'
    this.abortBtn.disabled = Boolean(busy) || n === 0
    this.question.textContent = `Abort ${n} run${n === 1 ? '' : 's'}?`
    show(this.abortBtn, !this.confirming)
    show(this.confirmBox, this.confirming)
    for (const btn of this.headers) {
      const active = btn.dataset.key === this.query.key
      btn.classList.toggle('frwt-sorted', active)
      btn.dataset.dir = active ? (this.query.desc ? 'desc' : 'asc') : ''
      btn.setAttribute('aria-sort', active ? (this.query.desc ? 'descending' : 'ascending') : 'none')
    }
    const conn = this.get('connection') ?? {}
    const state = String(conn.state ?? 'connected')
    this.banner.textContent = state === 'reconnecting' ? `Reconnecting… ${String(conn.message ?? '')}`
      : state === 'closed' ? `Not following the runs: ${String(conn.message ?? '')}` : ''
    this.banner.classList.toggle('frw-closed', state === 'closed')
    show(this.banner, state !== 'connected')
    const notice = String(this.get('notice') ?? '')
    this.notice.textContent = notice
    show(this.notice, notice.length > 0)
  }

  destroy() {
    for (const name of this.traits) this.model.off(`change:${name}`, this.onModel)
    this.unsubscribe()
    this.env.clearInterval(this.ticker)
    if (this.frameId !== null) this.env.cancelFrame(this.frameId)
    this.el.remove()
  }
}
