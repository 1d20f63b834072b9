/**
 * The rows of a runs table in the browser, shared by every view of one table model.
 *
 *     const store = attachRowStore(model)   // in initialize(); idempotent
 *     store.subscribe(() => view.refresh())
 *
 * A `rows` message from the kernel carries rows in columns (flyte_run_widget/notebook/run_rows.py):
 * names as a list; per row three uint32 indexes into the message's `phases`, `tasks` and `users`
 * lists, and two float64 times (start, end in ms).
 */
import { modelKey } from './store.js'

const stores = new WeakMap()

export function findRowStore(model) {
  return stores.get(modelKey(model))
}

export function attachRowStore(model) {
  const key = modelKey(model)
  let store = stores.get(key)
  if (!store) {
    store = new RowStore(model)
    stores.set(key, store)
  }
  return store
}

const str = (v) => (typeof v === 'string' ? v : String(v ?? ''))
const asView = (b) => (b instanceof DataView ? b : ArrayBuffer.isView(b) ? new DataView(b.buffer, b.byteOffset, b.byteLength) : b instanceof ArrayBuffer ? new DataView(b) : null)

/** The rows of one message, or null when it is malformed. */
export function decodeRows(msg, buffers) {
  const names = Array.isArray(msg?.names) ? msg.names : null
  const meta = asView(buffers?.[0])
  const times = asView(buffers?.[1])
  if (!names || !meta || !times) return null
  const n = names.length
  if (meta.byteLength !== n * 12 || times.byteLength !== n * 16) return null
  const phases = Array.isArray(msg.phases) ? msg.phases : []
  const tasks = Array.isArray(msg.tasks) ? msg.tasks : []
  const users = Array.isArray(msg.users) ? msg.users : []
  const rows = new Array(n)
  for (let i = 0; i < n; i++) {
    rows[i] = {
      name: str(names[i]),
      phase: str(phases[meta.getUint32(i * 12, true)]),
      task: str(tasks[meta.getUint32(i * 12 + 4, true)]),
      user: str(users[meta.getUint32(i * 12 + 8, true)]),
      start: times.getFloat64(i * 16, true),
      end: times.getFloat64(i * 16 + 8, true),
    }
  }
  return rows
}

export class RowStore {
  constructor(model) {
    this.model = model
    this.rows = new Map() // name -> row
    this.version = 0 // bumped on every change: views recompute their order only then
    this.loaded = false // no rows message yet: the view says "Loading", not "No runs"
    this.listeners = new Set()
    this.skew = 0
    this.onMsg = (msg, buffers) => this.handle(msg, buffers)
    this.onNow = () => {
      const now = Number(model.get('now_ms')) || 0
      if (now > 0) this.skew = now - Date.now()
    }
    model.on('msg:custom', this.onMsg)
    model.on('change:now_ms', this.onNow)
    // Custom messages are not replayed: a model that starts after the kernel sent rows asks
    // for all of them.
    model.send({ type: 'sync' })
  }

  handle(msg, buffers) {
    if (!msg || msg.type !== 'rows') return
    const rows = decodeRows(msg, buffers)
    if (!rows) {
      console.warn('flyte-run-widget: ignored a malformed rows message')
      return
    }
    this.loaded = true
    if (msg.reset) this.rows.clear()
    for (const name of Array.isArray(msg.drop) ? msg.drop : []) this.rows.delete(str(name))
    for (const row of rows) this.rows.set(row.name, row)
    this.version++
    for (const fn of this.listeners) fn()
  }

  kernelNow() {
    return Date.now() + this.skew
  }

  subscribe(fn) {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  dispose() {
    this.model.off('msg:custom', this.onMsg)
    this.model.off('change:now_ms', this.onNow)
    this.listeners.clear()
    stores.delete(modelKey(this.model))
  }
}
