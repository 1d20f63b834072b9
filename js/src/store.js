/**
 * Model-level state shared by every view of one widget model: the log buffers of each attempt,
 * the clock skew estimate and whether an abort was already sent.
 *
 *     const store = attachStore(model)   // in initialize(); idempotent
 *     store.subscribe((attempt) => ...)  // a view hears about new lines
 */
import { decodeBatch } from './batch.js'
import { followOutbox } from './outbox.js'
import { LineBuffer } from './ringbuffer.js'
import { TreeModel } from './tree.js'

const stores = new WeakMap()

/**
 * anywidget hands initialize() and each render() a *different* proxy object for the same model,
 * so the proxy cannot key a per-model map. The widget's Layout model is one object per widget
 * (ipywidgets creates one per DOMWidget and `get('layout')` returns that instance in every
 * proxy); hosts without one (marimo, tests) pass a stable model object, which is used instead.
 */
export function modelKey(model) {
  const layout = model.get('layout')
  return layout !== null && typeof layout === 'object' ? layout : model
}

/** The store of this model, if initialize() created one. */
export function findStore(model) {
  return stores.get(modelKey(model))
}

export function attachStore(model) {
  const key = modelKey(model)
  const existing = stores.get(key)
  if (existing) return existing
  const store = new LogStore(model, key)
  stores.set(key, store)
  return store
}

export class LogStore {
  constructor(model, key = model) {
    this.model = model
    this.key = key
    this.buffers = new Map()
    this.listeners = new Set()
    this.stateListeners = new Set()
    this.treeListeners = new Set()
    this.tree = new TreeModel()
    this.abortSent = false
    this.replayAsked = new Set()
    // kernel clock minus browser clock, in ms. A value synced before this page existed may be
    // stale (now_ms is only refreshed when the kernel pushes state), so it only ever tells us the
    // kernel is at least that far ahead; live changes replace the estimate.
    this.skew = Math.max(0, (Number(model.get('now_ms')) || 0) - Date.now())
    this.onMsg = (msg, buffers) => this.handle(msg, buffers)
    this.onMaxLines = () => {
      for (const buf of this.buffers.values()) buf.resize(this.capacity())
      this.emit(null)
    }
    this.onNow = () => {
      const now = Number(model.get('now_ms')) || 0
      if (now > 0) this.skew = now - Date.now()
    }
    model.on('msg:custom', this.onMsg)
    model.on('change:max_lines', this.onMaxLines)
    model.on('change:now_ms', this.onNow)
    // The text transport's messages arrive through a trait (outbox.js); `wake` after a request.
    this.outbox = followOutbox(model, this.onMsg)
  }

  capacity() {
    return Number(this.model.get('max_lines')) || 100000
  }

  buffer(attempt) {
    let buf = this.buffers.get(attempt)
    if (!buf) {
      buf = new LineBuffer(this.capacity())
      this.buffers.set(attempt, buf)
    }
    return buf
  }

  /** A `logs` message: `count` lines in four column buffers (see batch.js). */
  handle(msg, buffers) {
    if (msg?.type === 'tree') {
      if (this.tree.apply(msg)) this.emitTree()
      else console.warn('flyte-run-widget: ignored a malformed tree message')
      return
    }
    if (msg?.type === 'logs_reset') {
      // Another action was selected: its log replaces this one's in every view.
      this.buffers.clear()
      this.replayAsked.clear()
      this.emit('reset')
      return
    }
    if (!msg || msg.type !== 'logs') return
    const attempt = Number(msg.attempt)
    const lines = Number.isInteger(attempt) ? decodeBatch(msg.count, buffers) : null
    if (!lines) {
      // Only a bug (or a kernel of another version) sends one: say so where a developer looks.
      console.warn('flyte-run-widget: ignored a malformed log batch', {
        attempt: msg.attempt,
        first: msg.first,
        count: msg.count,
        buffers: Array.isArray(buffers) ? buffers.map((b) => b?.byteLength) : typeof buffers,
      })
      return
    }
    const buf = this.buffer(attempt)
    if (buf.end === 0 && msg.first > 0 && !msg.replay) {
      // This page missed the first lines: its model was made after they went out (marimo makes
      // it when the cell's output is shown). A replay from line 0 brings them and these.
      if (!this.replayAsked.has(attempt)) {
        this.replayAsked.add(attempt)
        this.model.send({ type: 'logs_request', attempt, from: 0 })
        this.outbox?.wake()
      }
      return
    }
    const first = Number.isInteger(msg.first) && msg.first >= 0 ? msg.first : buf.end
    const result = buf.append(first, lines)
    if (msg.done) buf.done = true
    if (result.added || result.gap || msg.done) this.emit(attempt)
  }

  /** Attempt numbers known from the trait or from messages, ascending. */
  attempts() {
    const set = new Set(this.buffers.keys())
    const fromTrait = this.model.get('log_attempts')
    if (Array.isArray(fromTrait)) for (const a of fromTrait) if (Number.isInteger(a)) set.add(a)
    return [...set].sort((a, b) => a - b)
  }

  kernelNow() {
    return Date.now() + this.skew
  }

  subscribe(fn) {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  /** Record that this model's abort went out; every view then disables its Abort button. */
  markAbortSent() {
    this.abortSent = true
    for (const fn of this.stateListeners) fn()
  }

  subscribeTree(fn) {
    this.treeListeners.add(fn)
    return () => this.treeListeners.delete(fn)
  }

  emitTree() {
    for (const fn of this.treeListeners) fn()
  }

  subscribeState(fn) {
    this.stateListeners.add(fn)
    return () => this.stateListeners.delete(fn)
  }

  emit(attempt) {
    for (const fn of this.listeners) fn(attempt)
  }

  dispose() {
    this.model.off('msg:custom', this.onMsg)
    this.model.off('change:max_lines', this.onMaxLines)
    this.model.off('change:now_ms', this.onNow)
    this.outbox.stop()
    this.listeners.clear()
    this.stateListeners.clear()
    this.treeListeners.clear()
    if (stores.get(this.key) === this) stores.delete(this.key)
  }
}
