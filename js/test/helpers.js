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

export function lines(from, count, make = (i) => `line ${i}\n`) {
  const out = []
  for (let i = from; i < from + count; i++) out.push([1700000000000 + i, 1, make(i)])
  return out
}

export function logsMsg(attempt, first, batch, done = false) {
  return { type: 'logs', attempt, first, lines: batch, done }
}

/**
 * What the kernel sends (flyte_run_widget/logs.py encode_batch): columns as DataViews, the way
 * JupyterLab hands buffers to a widget. Text loses a trailing newline, as in to_columns.
 */
export function encodeBatch(batch) {
  const texts = batch.map((l) => String(l[2]).replace(/\n$/, ''))
  const data = new TextEncoder().encode(texts.join(''))
  const offsets = new Uint32Array(batch.length + 1)
  texts.forEach((t, i) => (offsets[i + 1] = offsets[i] + t.length))
  const ts = Float64Array.from(batch, (l) => l[0])
  const origin = Uint8Array.from(batch, (l) => l[1])
  return [data, offsets, ts, origin].map((a) => new DataView(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength)))
}

/** A binary `logs` message and its buffers: `model.receive(...binaryLogsMsg(1, 0, lines(0, 3)))`. */
export function binaryLogsMsg(attempt, first, batch, done = false) {
  return [{ type: 'logs', attempt, first, count: batch.length, done }, encodeBatch(batch)]
}
