/**
 * The run's action tree: a model fed by the kernel's `tree` messages (one per widget model, in
 * the store) and a virtualised view that draws only the rows in sight.
 *
 *     store.tree.apply(msg)                  // columns from flyte_run_widget/notebook/tree.py
 *     const view = new TreeView({ store, send, selected: () => model.get('selected') })
 *
 * Names, groups and task names are untrusted: they only ever go in as text.
 */
import { isTerminal } from './badge.js'
import { elapsedMs, formatElapsed } from './clock.js'
import { formatCount, h, show } from './dom.js'

export const PHASES = ['unspecified', 'queued', 'waiting_for_resources', 'initializing', 'running',
  'succeeded', 'failed', 'aborted', 'timed_out', 'paused', 'recovered']
export const TREE_ROW = 22
export const MAX_VISIBLE_ROWS = 12
export const BAR_MIN = 5 // a node with this many children shows the stacked phase bar
const OVERSCAN = 4
const MAX_ROWS = 1e6
const ABORT_REASON = 'Aborted from the notebook widget'

export const phaseName = (n) => PHASES[n] ?? `unknown(${n})`
const int = (v) => (Number.isInteger(v) ? v : -2)
const list = (v, n) => (Array.isArray(v) && (n === undefined || v.length === n) ? v : null)

export class TreeModel {
  constructor() {
    for (const c of ['name', 'parent', 'group', 'task', 'detailed', 'phase', 'start', 'end', 'attempts']) this[c] = []
    this.collapsed = new Set()
    this.aborts = new Set() // names whose abort this page sent
    this.asked = new Set() // names whose details this page asked for
    this.flat = null
    this.size = 0
  }

  /** Apply one `tree` message; false (and nothing changed) if it is malformed. */
  apply(msg) {
    const k = list(msg.k)
    const i = list(msg.i)
    if (!k || !i) return false
    const cols = [list(msg.n, k.length), list(msg.p, k.length), list(msg.g, k.length), list(msg.t, k.length), list(msg.d, k.length),
      list(msg.ph, i.length), list(msg.s, i.length), list(msg.e, i.length), list(msg.a, i.length)]
    if (cols.includes(null) || [...k, ...i].some((r) => int(r) < 0 || r >= MAX_ROWS)) return false
    const [n, p, g, t, d, ph, s, e, a] = cols
    const base = Number(msg.b) || 0
    k.forEach((r, j) => {
      this.name[r] = String(n[j])
      this.parent[r] = int(p[j])
      this.group[r] = String(g[j] ?? '')
      this.task[r] = String(t[j] ?? '')
      this.detailed[r] = Boolean(d[j])
    })
    i.forEach((r, j) => {
      this.phase[r] = int(ph[j])
      this.start[r] = s[j] >= 0 ? base + Number(s[j]) : 0
      this.end[r] = e[j] >= 0 ? base + Number(e[j]) : 0
      this.attempts[r] = Number(a[j]) || 0
    })
    let size = this.size
    for (const r of k) if (r >= size) size = r + 1
    for (const r of i) if (r >= size) size = r + 1
    for (let r = this.size; r < size; r++) if (this.name[r] === undefined) this.name[r] = ''
    this.size = size
    // Phases, times and attempts do not move rows: only new or re-parented actions re-flatten.
    if (k.length) this.flat = null
    return true
  }

  toggle(key) {
    if (!this.collapsed.delete(key)) this.collapsed.add(key)
    this.flat = null
  }

  /** The rows shown, in order (a `FlatRows`: `.length`, `.get(j)`). Cached until the tree or a
   * fold changes. Built with integer stacks and no object per action: a 10,000-action tree
   * re-flattens in a frame while it grows. */
  rows() {
    if (this.flat) return this.flat
    const n = this.size
    const kids = new Map()
    const roots = []
    for (let r = 0; r < n; r++) {
      const p = this.parent[r]
      if (p >= 0 && p < n && p !== r) {
        let list = kids.get(p)
        if (list === undefined) kids.set(p, (list = []))
        list.push(r)
      } else roots.push(r)
    }
    const out = new FlatRows(kids)
    const seen = new Uint8Array(n)
    // Explicit stacks, not recursion: a deep tree must not overflow the call stack. A group is
    // pushed as -(its index in out.groups + 1).
    const stackR = []
    const stackD = []
    for (let j = roots.length - 1; j >= 0; j--) {
      stackR.push(roots[j])
      stackD.push(0)
    }
    while (stackR.length) {
      const x = stackR.pop()
      const depth = stackD.pop()
      if (x < 0) {
        const grp = out.groups[-x - 1]
        out.push(x, depth)
        if (!this.collapsed.has(grp.key)) {
          for (let j = grp.kids.length - 1; j >= 0; j--) {
            stackR.push(grp.kids[j])
            stackD.push(depth + 1)
          }
        }
        continue
      }
      if (seen[x]) continue // a parent cycle from a confused service ends here
      seen[x] = 1
      out.push(x, depth)
      const children = kids.get(x)
      if (children === undefined || this.collapsed.has(`a${x}`)) continue
      const groups = new Map()
      const loose = []
      for (const c of children) {
        const g = this.group[c]
        if (!g) loose.push(c)
        else {
          const members = groups.get(g)
          if (members === undefined) groups.set(g, [c])
          else members.push(c)
        }
      }
      for (let j = loose.length - 1; j >= 0; j--) {
        stackR.push(loose[j])
        stackD.push(depth + 1)
      }
      for (const [g, members] of [...groups].reverse()) {
        const id = out.groups.push({ g, key: `g${x}:${g}`, kids: members })
        stackR.push(-id)
        stackD.push(depth + 1)
      }
    }
    this.flat = out
    return out
  }

  /** How many of `rows` are in each phase, as [phase, count] from the most pressing. */
  counts(rows) {
    const c = new Map()
    for (const r of rows) c.set(this.phase[r], (c.get(this.phase[r]) ?? 0) + 1)
    const order = [6, 8, 7, 4, 3, 2, 1, 9, 0, 5, 10]
    return [...c].sort((x, y) => (order.indexOf(x[0]) >>> 0) - (order.indexOf(y[0]) >>> 0))
  }
}

const NO_KIDS = Object.freeze([])

/** The flattened tree: row j is an action (`r[j]` >= 0, its row in the model) or a group
 * (`r[j]` < 0). `get(j)` makes the `{ r, depth, key, kids }` (action) or `{ g, depth, key,
 * kids }` (group) object a view draws, for the rows in sight only. */
export class FlatRows {
  constructor(kids) {
    this.kids = kids
    this.r = []
    this.depth = []
    this.groups = []
    this.length = 0
  }

  push(x, depth) {
    this.r.push(x)
    this.depth.push(depth)
    this.length++
  }

  get(j) {
    const x = this.r[j]
    const depth = this.depth[j]
    if (x >= 0) return { r: x, depth, key: `a${x}`, kids: this.kids.get(x) ?? NO_KIDS }
    const grp = this.groups[-x - 1]
    return { g: grp.g, depth, key: grp.key, kids: grp.kids }
  }
}

export class TreeView {
  constructor({ store, send, selected, env = {} }) {
    this.store = store
    this.tree = store.tree
    this.send = send
    this.selected = selected
    const g = globalThis
    this.env = {
      requestFrame: env.requestFrame ?? ((fn) => g.requestAnimationFrame(fn)),
      cancelFrame: env.cancelFrame ?? ((id) => g.cancelAnimationFrame(id)),
      setInterval: env.setInterval ?? ((fn, ms) => g.setInterval(fn, ms)),
      clearInterval: env.clearInterval ?? ((id) => g.clearInterval(id)),
    }
    this.pool = []
    this.frameId = null
    this.ticker = null
    this.confirming = null
    this.spacer = h('div', { class: 'frw-spacer' })
    this.rowsEl = h('div', { class: 'frw-rows', onclick: (ev) => this.click(ev) })
    this.viewport = h('div', { class: 'frw-tree-vp', role: 'tree', 'aria-label': 'Actions', onscroll: () => this.invalidate() },
      this.spacer, this.rowsEl)
    this.countEl = h('span', { class: 'frw-tcount' })
    this.el = h('div', { class: 'frw-tree' }, h('div', { class: 'frw-tbar' }, h('span', { class: 'frw-panel-title' }, 'Actions'), this.countEl), this.viewport)
    this.unsubscribe = store.subscribeTree(() => this.invalidate())
    this.invalidate()
  }

  invalidate() {
    // A run without child actions shows no tree and costs no frames.
    if (this.tree.size <= 1) return show(this.el, false)
    if (this.frameId === null) this.frameId = this.env.requestFrame(() => {
      this.frameId = null
      this.render()
    })
  }

  render() {
    const t = this.tree
    const rows = t.rows()
    show(this.el, t.size > 1)
    this.countEl.textContent = `${formatCount(t.size)} actions`
    const height = Math.min(rows.length, MAX_VISIBLE_ROWS) * TREE_ROW
    this.viewport.style.height = `${height}px`
    this.spacer.style.height = `${rows.length * TREE_ROW}px`
    const top = this.viewport.scrollTop
    const first = Math.max(0, Math.floor(top / TREE_ROW) - OVERSCAN)
    const last = Math.min(rows.length, Math.ceil((top + height) / TREE_ROW) + OVERSCAN)
    this.rowsEl.style.transform = `translateY(${first * TREE_ROW}px)`
    while (this.pool.length < last - first) this.rowsEl.append(this.newRow())
    while (this.pool.length > Math.max(0, last - first)) this.pool.pop().el.remove()
    let active = false
    const want = []
    for (let j = first; j < last; j++) {
      const row = rows.get(j)
      this.fill(this.pool[j - first], row)
      if (row.g === undefined) {
        active = active || (t.start[row.r] > 0 && !(t.end[row.r] > 0))
        const name = t.name[row.r]
        if (!t.detailed[row.r] && name && !t.asked.has(name)) want.push(name)
      }
    }
    if (want.length) {
      for (const name of want) t.asked.add(name)
      this.send({ type: 'tree_want', names: want })
    }
    // Elapsed times of running actions tick once a second, and only while one is in sight.
    if (active && this.ticker === null) this.ticker = this.env.setInterval(() => this.invalidate(), 1000)
    if (!active && this.ticker !== null) this.stopTicker()
  }

  newRow() {
    const p = {
      fold: h('span', { class: 'frw-fold' }),
      dot: h('span', { class: 'frw-tdot' }),
      name: h('span', { class: 'frw-tname' }),
      meta: h('span', { class: 'frw-tmeta' }),
      bar: h('span', { class: 'frw-bar' }),
      time: h('span', { class: 'frw-elapsed' }),
      tries: h('span', { class: 'frw-attempt' }),
      act: h('span', { class: 'frw-tact' }),
    }
    p.el = h('div', { class: 'frw-trow', role: 'treeitem' }, p.fold, p.dot, p.name, p.meta, p.bar, p.time, p.tries, p.act)
    this.pool.push(p)
    return p.el
  }

  fill(p, row) {
    const t = this.tree
    const group = row.g !== undefined
    const kids = row.kids ?? []
    p.row = row
    p.el.style.paddingLeft = `${6 + row.depth * 14}px`
    p.fold.textContent = kids.length ? (t.collapsed.has(row.key) ? '▸' : '▾') : ''
    if (group) {
      p.el.className = 'frw-trow frw-tgroup'
      p.dot.className = 'frw-tdot'
      p.name.textContent = row.g
      p.meta.textContent = `${formatCount(kids.length)} actions`
      p.time.textContent = p.tries.textContent = ''
      p.act.replaceChildren()
    } else {
      const r = row.r
      const phase = phaseName(t.phase[r])
      const name = t.name[r]
      const sel = (this.selected() || this.rootName()) === name
      p.el.className = `frw-trow frw-phase-${PHASES.includes(phase) ? phase : 'unknown'}${sel ? ' frw-sel' : ''}`
      p.el.setAttribute('aria-selected', String(sel))
      p.dot.className = 'frw-tdot'
      p.dot.title = phase
      p.name.textContent = name
      p.meta.textContent = [t.group[r] && !row.depth ? t.group[r] : '', t.task[r]].filter(Boolean).join(' · ')
      const ms = elapsedMs(t.start[r], t.end[r], this.store.kernelNow())
      p.time.textContent = ms === null ? '' : formatElapsed(ms)
      p.tries.textContent = t.attempts[r] > 1 ? `×${t.attempts[r]}` : ''
      this.fillActions(p.act, name, sel && t.parent[r] >= 0 && !isTerminal(phase))
    }
    this.fillBar(p.bar, kids)
  }

  fillBar(bar, kids) {
    show(bar, kids.length >= BAR_MIN)
    if (kids.length < BAR_MIN) return
    const parts = this.tree.counts(kids)
    bar.title = parts.map(([ph, c]) => `${phaseName(ph)} ${c}`).join(', ')
    bar.replaceChildren(...parts.map(([ph, c]) => {
      const seg = h('span', { class: `frw-phase-${PHASES[ph] ?? 'unknown'}` })
      seg.style.flexGrow = String(c)
      return seg
    }))
  }

  fillActions(act, name, abortable) {
    const t = this.tree
    if (!abortable) return act.replaceChildren()
    if (t.aborts.has(name)) return act.replaceChildren(h('span', { class: 'frw-attempt' }, 'Aborting…'))
    if (this.confirming === name) {
      return act.replaceChildren(h('span', { class: 'frw-confirm-q' }, 'Abort action?'),
        h('button', { type: 'button', class: 'frw-btn frw-small frw-danger', 'data-do': 'yes' }, 'Yes, abort'),
        h('button', { type: 'button', class: 'frw-btn frw-small', 'data-do': 'no' }, 'Cancel'))
    }
    act.replaceChildren(h('button', { type: 'button', class: 'frw-btn frw-small frw-tabort', 'data-do': 'abort' }, 'Abort'))
  }

  rootName() {
    const t = this.tree
    for (let r = 0; r < t.size; r++) if (t.parent[r] < 0) return t.name[r]
    return ''
  }

  click(ev) {
    const p = this.pool.find((x) => x.el.contains(ev.target))
    if (!p) return
    const row = p.row
    const what = ev.target.closest?.('[data-do]')?.getAttribute('data-do')
    const name = row.g === undefined ? this.tree.name[row.r] : null
    if (what === 'abort') this.confirming = name
    else if (what === 'no') this.confirming = null
    else if (what === 'yes') {
      this.confirming = null
      if (!this.tree.aborts.has(name)) {
        this.tree.aborts.add(name)
        this.send({ type: 'abort_action', name, reason: ABORT_REASON })
      }
    } else if (ev.target === p.fold || row.g !== undefined) {
      if (row.kids.length) this.tree.toggle(row.key)
    } else if (name !== null) {
      this.confirming = null
      this.send({ type: 'select', name })
    }
    this.store.emitTree()
  }

  stopTicker() {
    if (this.ticker !== null) this.env.clearInterval(this.ticker)
    this.ticker = null
  }

  destroy() {
    this.unsubscribe()
    this.stopTicker()
    if (this.frameId !== null) this.env.cancelFrame(this.frameId)
    this.el.remove()
  }
}
