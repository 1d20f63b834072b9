import { describe, expect, it } from 'vitest'
import { decodeBatch } from '../src/batch.js'
import { followOutbox, POLL_MS } from '../src/outbox.js'
import { attachStore } from '../src/store.js'
import { encodeBatch, fakeModel, lines, logsMsg } from './helpers.js'

const texts = (buf) => {
  const out = []
  for (let s = buf.firstSeq; s < buf.nextSeq; s++) out.push(buf.textAt(s))
  return out
}

/** Base64 of a column, as host.py's pack() writes it. */
const b64 = (view) => Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64')

function fakeTimers() {
  const intervals = new Map()
  let next = 0
  return {
    setInterval(fn, ms) {
      intervals.set(++next, { fn, ms })
      return next
    },
    clearInterval(id) {
      intervals.delete(id)
    },
    tick() {
      for (const { fn } of [...intervals.values()]) fn()
    },
    intervals,
  }
}

describe('a page that missed the first lines (marimo makes the model late)', () => {
  it('asks once for a replay from line 0 and keeps every line, none counted dropped', () => {
    const model = fakeModel()
    const store = attachStore(model)
    model.receive(...logsMsg(1, 5, lines(5, 3)))
    model.receive(...logsMsg(1, 8, lines(8, 2)))
    expect(model.sent).toEqual([{ type: 'logs_request', attempt: 1, from: 0 }])
    const [msg, buffers] = logsMsg(1, 0, lines(0, 10))
    model.receive({ ...msg, replay: true }, buffers)
    model.receive(...logsMsg(1, 10, lines(10, 1)))
    const buf = store.buffer(1)
    expect(texts(buf)).toEqual(lines(0, 11).map((l) => l[2]))
    expect(buf.dropped).toBe(0)
  })

  it('takes a replay that starts past 0 (the kernel itself dropped the oldest lines)', () => {
    const model = fakeModel()
    const store = attachStore(model)
    const [msg, buffers] = logsMsg(1, 4, lines(4, 2))
    model.receive({ ...msg, replay: true }, buffers)
    expect(texts(store.buffer(1))).toEqual(['line 4', 'line 5'])
    expect(model.sent).toEqual([])
  })
})

describe('the text transport', () => {
  it('decodes base64 columns as it decodes binary ones', () => {
    const batch = [...lines(0, 3), [7, 2, 'café 😀 <b>x</b>']]
    const binary = decodeBatch(4, encodeBatch(batch))
    const text = decodeBatch(4, encodeBatch(batch).map(b64))
    for (let i = 0; i < 4; i++) {
      expect(text.line(i)).toBe(binary.line(i))
      expect(text.ts[i]).toBe(binary.ts[i])
      expect(text.origin[i]).toBe(binary.origin[i])
    }
    expect(decodeBatch(4, ['%%%', ...encodeBatch(batch).slice(1).map(b64)])).toBeNull()
  })

  it('polls, hands each outbox item to the store in order, stops when idle and wakes on request', () => {
    const timers = fakeTimers()
    const model = fakeModel({ transport: 'text', outbox: '' })
    const store = attachStore(model)
    expect(model.sent).toEqual([{ type: 'poll' }])
    // the store's own poller runs on real timers: this test drives one on fake ones instead
    store.outbox.stop()
    model.sent.length = 0
    const delivered = []
    const box = followOutbox(model, (msg, buffers) => delivered.push(msg.first) && store.onMsg(msg, buffers), timers)
    store.outbox = box
    expect(model.sent).toEqual([{ type: 'poll' }])
    expect([...timers.intervals.values()].map((i) => i.ms)).toEqual([POLL_MS])
    timers.tick()
    expect(model.sent.length).toBe(2)
    const item = (first, n) => {
      const [msg, buffers] = logsMsg(1, first, lines(first, n))
      return { msg, b64: buffers.map(b64) }
    }
    model.set('outbox', JSON.stringify({ seq: 1, idle: false, items: [item(0, 2), item(2, 3)] }))
    model.set('outbox', JSON.stringify({ seq: 1, idle: false, items: [item(0, 2)] })) // a repeat: ignored
    expect(texts(store.buffer(1))).toEqual(lines(0, 5).map((l) => l[2]))
    expect(delivered).toEqual([0, 2])
    model.set('outbox', JSON.stringify({ seq: 2, idle: true, items: [] }))
    expect(timers.intervals.size).toBe(0)
    box.wake()
    expect(timers.intervals.size).toBe(1)
    box.stop()
    expect(timers.intervals.size).toBe(0)
  })

  it('does nothing on the binary transport', () => {
    const model = fakeModel({ transport: 'binary' })
    attachStore(model)
    expect(model.sent).toEqual([])
  })
})
