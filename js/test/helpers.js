import { decodeBatch } from '../src/batch.js'

// A stand-in for the anywidget model (which only exists in a browser with a kernel) and a
// manual animation-frame queue, so tests decide when a frame runs.

export function fakeModel(overrides = {}) {
  const attrs = {
    run_name: 'r-abc123',
    run_url: 'https://flyte.example.com/runs/r-abc123',
    task_name: 'train.fit',
    phase: 'running',
    raw_phase: 4,
    start_ms: 0,
    end_ms: 0,
    now_ms: 0,
    attempts: 1,
    error: {},
    outputs: '',
    connection: { state: 'connected', message: '' },
    busy: '',
    max_lines: 100000,
    log_attempts: [1],
    ...overrides,
  }
  const handlers = new Map()
  const model = {
    sent: [],
    get: (key) => attrs[key],
    /** Like a kernel push: change the value and fire change:<key>. */
    set(key, value) {
      attrs[key] = value
      model.emit(`change:${key}`, model, value)
    },
    save_changes() {},
    send(msg) {
      model.sent.push(structuredClone(msg))
    },
    on(event, fn) {
      if (!handlers.has(event)) handlers.set(event, new Set())
      handlers.get(event).add(fn)
    },
    off(event, fn) {
      handlers.get(event)?.delete(fn)
    },
    emit(event, ...args) {
      for (const fn of [...(handlers.get(event) ?? [])]) fn(...args)
    },
    /** A custom message from the kernel. */
    receive(msg, buffers = []) {
      model.emit('msg:custom', msg, buffers)
    },
    listenerCount() {
      let n = 0
      for (const set of handlers.values()) n += set.size
      return n
    },
  }
  return model
}

/** What anywidget does: a new proxy object per initialize()/render() call, same model. */
export function proxy(model, layout) {
  return {
    get: (key) => (key === 'layout' ? layout : model.get(key)),
    set: model.set,
    save_changes: model.save_changes,
    send: model.send,
    on: model.on,
    off: model.off,
  }
}

export function manualFrames({ step = 1000 } = {}) {
  const queue = new Map()
  let next = 0
  let clock = 0
  return {
    /** A clock that moves `step` ms before each run(), or as told by advance(). */
    now: () => clock,
    advance(ms) {
      clock += ms
    },
    requestFrame(fn) {
      queue.set(++next, fn)
      return next
    },
    cancelFrame(id) {
      queue.delete(id)
    },
    /** Run the frames requested so far (not ones they request). */
    run() {
      clock += step
      const fns = [...queue.values()]
      queue.clear()
      for (const fn of fns) fn()
    },
    get pending() {
      return queue.size
    },
  }
}

/** `[ts, origin, text]` triples; texts as the kernel keeps them (no trailing newline). */
export function lines(from, count, make = (i) => `line ${i}`) {
  const out = []
  for (let i = from; i < from + count; i++) out.push([1700000000000 + i, 1, make(i)])
  return out
}

/**
 * What the kernel sends (flyte_run_widget/remote/log_lines.py encode_batch): columns as DataViews, the way
 * JupyterLab hands buffers to a widget. test/golden.test.js holds this to the kernel's bytes.
 */
export function encodeBatch(batch) {
  const n = batch.length
  const texts = new Array(n)
  const offsets = new Uint32Array(n + 1)
  const ts = new Float64Array(n)
  const origin = new Uint8Array(n)
  for (let i = 0; i < n; i++) {
    const [stamp, from, text] = batch[i]
    texts[i] = text
    offsets[i + 1] = offsets[i] + text.length // UTF-16 code units, as the kernel counts them
    ts[i] = stamp
    origin[i] = from
  }
  const data = new TextEncoder().encode(texts.join(''))
  return [data, offsets, ts, origin].map((a) => new DataView(a.buffer, a.byteOffset, a.byteLength))
}

/** A `logs` message and its buffers: `model.receive(...logsMsg(1, 0, lines(0, 3)))`. */
export function logsMsg(attempt, first, batch, done = false) {
  return [{ type: 'logs', attempt, first, count: batch.length, done }, encodeBatch(batch)]
}

/** The decoded form LineBuffer.append takes: `buf.append(0, decoded(lines(0, 3)))`. */
export function decoded(batch) {
  return decodeBatch(batch.length, encodeBatch(batch))
}
