/**
 * What the kernel does for the widget, done by the run page itself from the service's answers:
 * log lines into the widget's four-column batches, actions into `tree` messages, and streams
 * that subscribe again after a dropped connection.
 *
 *     model.emit({ type: 'logs', attempt, first, count }, encodeColumns({ texts, ts, origin }))
 *     const tree = new PageTree(); tree.merge(enrichedActions) && model.emit(tree.message())
 */
import { phaseKey, timestampMs } from './connect.js'
import { PHASES } from './tree.js'

const encoder = new TextEncoder()

/** Lines as columns (`texts`, `ts` in epoch ms, `origin`) into the buffers batch.js decodes. */
export function encodeColumns({ texts, ts, origin }) {
  const n = texts.length
  const offsets = new Uint32Array(n + 1)
  let at = 0
  for (let i = 0; i < n; i++) {
    at += texts[i].length // UTF-16 units, what the decoded string counts
    offsets[i + 1] = at
  }
  return [encoder.encode(texts.join('')), offsets, Float64Array.from(ts), Uint8Array.from(origin)]
}

export const phaseNumber = (phase) => Math.max(0, PHASES.indexOf(phaseKey(phase)))

/** The run's actions by row, as notebook/tree.py keeps them; `message()` sends what changed. */
export class PageTree {
  constructor() {
    this.rows = new Map()
    this.nodes = []
    this.changed = new Set()
  }

  row(name) {
    let r = this.rows.get(name)
    if (r === undefined) {
      r = this.nodes.length
      this.rows.set(name, r)
      this.nodes.push({ name, parent: -1, group: '', task: '', detailed: false, phase: 0, start: 0, end: 0, attempts: 0 })
      this.changed.add(r)
    }
    return r
  }

  /** Merge one Action (or ActionDetails: the same id, metadata and status); true if it changed. */
  merge(action) {
    const name = action?.id?.name
    if (typeof name !== 'string' || !name) return false
    const r = this.row(name)
    const node = this.nodes[r]
    const before = JSON.stringify(node)
    const meta = action.metadata ?? {}
    const status = action.status ?? {}
    // An empty field never erases what an earlier message said (watch updates carry little).
    if (meta.parent && node.parent === -1) node.parent = this.row(meta.parent)
    node.group = meta.group || node.group
    if (meta.task) {
      node.task = meta.task.shortName || meta.task.id?.name || node.task
      node.detailed = true
    }
    node.phase = phaseNumber(status.phase) || node.phase
    node.start = timestampMs(status.startTime) || node.start
    node.end = timestampMs(status.endTime) || node.end
    node.attempts = Number(status.attempts) || node.attempts
    if (JSON.stringify(node) !== before) this.changed.add(r)
    return this.changed.size > 0
  }

  /** A `tree` message of the changed rows (every row with `all`), or null when none changed. */
  message(all = false) {
    const rows = all ? this.nodes.map((_, r) => r) : [...this.changed].sort((a, b) => a - b)
    this.changed.clear()
    if (!rows.length) return null
    const pick = (f) => rows.map((r) => f(this.nodes[r]))
    return {
      type: 'tree', size: this.nodes.length, b: 0, k: rows, i: rows,
      n: pick((x) => x.name), p: pick((x) => x.parent), g: pick((x) => x.group), t: pick((x) => x.task),
      d: pick((x) => (x.detailed ? 1 : 0)), ph: pick((x) => x.phase), s: pick((x) => (x.start ? x.start : -1)),
      e: pick((x) => (x.end ? x.end : -1)), a: pick((x) => x.attempts),
    }
  }
}

/** The error panel's fields from ActionDetails (notebook/widget.py `_error_dict`). */
export function errorOf(details) {
  const err = details?.errorInfo
  if (err) return { kind: String(err.kind ?? '').replace(/^KIND_/, '') || 'ERROR', code: String(err.code ?? ''), message: String(err.message ?? '') }
  if (details?.abortInfo) return { kind: 'ABORTED', code: '', message: String(details.abortInfo.reason || 'aborted') }
  return {}
}

/**
 * Run `subscribe(signal)` (an async function reading one stream to its end) until `signal`
 * aborts, subscribing again after a failure with a growing pause. `onState('reconnecting', e)`
 * and `onState('connected')` tell the page; `fatal(e)` (e.g. a missing token) stops it.
 */
export async function keepFollowing(subscribe, { signal, onState = () => {}, fatal = () => false, timers = globalThis }) {
  let pause = 500
  while (!signal.aborted) {
    try {
      const finished = await subscribe(signal, () => {
        pause = 500
        onState('connected')
      })
      if (finished) return
    } catch (e) {
      if (signal.aborted) return
      if (fatal(e)) return
      onState('reconnecting', e)
    }
    await new Promise((resolve) => {
      const id = timers.setTimeout(resolve, pause)
      signal.addEventListener('abort', () => { timers.clearTimeout(id); resolve() }, { once: true })
    })
    pause = Math.min(pause * 2, 8000)
  }
}
