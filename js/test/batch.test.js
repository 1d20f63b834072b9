import { describe, expect, it, vi } from 'vitest'
import { decodeBatch } from '../src/batch.js'
import { LineBuffer } from '../src/ringbuffer.js'
import { attachStore } from '../src/store.js'
import { decoded, encodeBatch, fakeModel, lines, logsMsg } from './helpers.js'

const texts = (buf) => {
  const out = []
  for (let s = buf.firstSeq; s < buf.nextSeq; s++) out.push(buf.textAt(s))
  return out
}

const hostile = [
  [1700000000123, 1, 'plain'],
  [1700000000124.5, 2, 'café 日本語 😀 two units \u001b[31mred\u001b[0m'],
  [0, 0, ''],
  [3, 1, 'nul\u0000inside <script>alert(1)</script> <img src=x onerror=alert(1)>'],
  [4, 1, '😀'],
  [5, 1, 'x'.repeat(10 * 2 ** 20)],
  [6, 1, 'last'],
]

describe('decodeBatch', () => {
  it('gives back every line, timestamp and originator, across multi-byte UTF-8', () => {
    const b = decodeBatch(hostile.length, encodeBatch(hostile))
    expect(b.count).toBe(hostile.length)
    for (let i = 0; i < hostile.length; i++) {
      expect(b.line(i)).toBe(hostile[i][2])
      expect(b.ts[i]).toBe(hostile[i][0])
      expect(b.origin[i]).toBe(hostile[i][1])
    }
  })

  it('accepts ArrayBuffers, typed arrays and DataViews at any offset', () => {
    const cols = encodeBatch(lines(0, 3))
    const asArrayBuffer = cols.map((v) => v.buffer)
    expect(decodeBatch(3, asArrayBuffer).line(2)).toBe('line 2')
    const shifted = cols.map((v) => {
      const big = new Uint8Array(v.byteLength + 3)
      big.set(new Uint8Array(v.buffer), 3)
      return new DataView(big.buffer, 3, v.byteLength) // misaligned for Uint32/Float64
    })
    const b = decodeBatch(3, shifted)
    expect([b.line(0), b.line(1), b.line(2)]).toEqual(['line 0', 'line 1', 'line 2'])
    expect(b.ts[2]).toBe(1700000000002)
    expect(decodeBatch(0, encodeBatch([])).count).toBe(0)
  })

  it('replaces invalid UTF-8 and keeps the lines around it', () => {
    const [, offsets, ts, origin] = encodeBatch([[1, 1, 'ab'], [2, 1, 'c']])
    const bad = new Uint8Array([0x61, 0xff, 0x63]) // 'a', an invalid byte, 'c'
    const b = decodeBatch(2, [bad, offsets, ts, origin])
    expect([b.line(0), b.line(1)]).toEqual(['a\ufffd', 'c'])
  })

  it('rejects malformed batches', () => {
    const cols = encodeBatch(lines(0, 3))
    expect(decodeBatch(4, cols)).toBeNull() // columns too short
    expect(decodeBatch(-1, cols)).toBeNull()
    expect(decodeBatch(1.5, cols)).toBeNull()
    expect(decodeBatch(3, cols.slice(0, 3))).toBeNull()
    expect(decodeBatch(3, null)).toBeNull()
    expect(decodeBatch(3, [cols[0], 'x', cols[2], cols[3]])).toBeNull()
    const backwards = new Uint32Array([0, 5, 2, 6])
    expect(decodeBatch(3, [cols[0], backwards, cols[2], cols[3]])).toBeNull()
    const past = new Uint32Array([0, 1, 2, 999])
    expect(decodeBatch(3, [cols[0], past, cols[2], cols[3]])).toBeNull()
  })
})

describe('binary batches in the store', () => {
  it('appends, skips a replay, counts a gap and marks done', () => {
    const model = fakeModel({ max_lines: 5 })
    const store = attachStore(model)
    const seen = []
    store.subscribe((a) => seen.push(a))
    model.receive(...logsMsg(1, 0, lines(0, 3)))
    model.receive(...logsMsg(1, 0, lines(0, 4))) // replay: only line 3 is new
    model.receive(...logsMsg(1, 10, lines(10, 2), true)) // 4..9 never arrived
    const buf = store.buffer(1)
    expect(texts(buf)).toEqual(['line 1', 'line 2', 'line 3', 'line 10', 'line 11'])
    expect(buf.end).toBe(12)
    expect(buf.dropped).toBe(7)
    expect(buf.done).toBe(true)
    expect(buf.tsAt(buf.nextSeq - 1)).toBe(1700000000011)
    expect(seen).toEqual([1, 1, 1])
    store.dispose()
  })

  it('ignores a batch it cannot decode, with a console warning', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const model = fakeModel()
    const store = attachStore(model)
    model.receive(...logsMsg(1, 0, lines(0, 3)))
    const [msg, buffers] = logsMsg(1, 3, lines(3, 2))
    model.receive({ ...msg, count: 5 }, buffers) // columns too short
    model.receive({ ...msg, attempt: 'one' }, buffers)
    model.receive({ type: 'logs', attempt: 1, first: 3, lines: lines(3, 2) }) // not the kernel's form
    expect(store.buffer(1).end).toBe(3)
    expect(warn).toHaveBeenCalledTimes(3)
    expect(warn.mock.calls[0][0]).toMatch(/malformed log batch/)
    expect(warn.mock.calls[0][1]).toEqual({ attempt: 1, first: 3, count: 5, buffers: [12, 12, 16, 2] })
    model.receive({ type: 'other' }) // not a log batch at all: nothing to say
    expect(warn).toHaveBeenCalledTimes(3)
    store.dispose()
  })

  it('holds hostile text as is', () => {
    const buf = new LineBuffer(100)
    buf.append(0, decodeBatch(hostile.length, encodeBatch(hostile)))
    expect(texts(buf)).toEqual(hostile.map((l) => l[2]))
    expect(buf.originAt(buf.firstSeq + 1)).toBe(2)
  })

  it('keeps spans of one string per batch through eviction and resize', () => {
    const buf = new LineBuffer(3)
    const batch = [[1, 1, 'α'], [2, 1, '😀b'], [3, 2, 'c'], [4, 1, 'dé'], [5, 1, '']]
    buf.append(0, decodeBatch(5, encodeBatch(batch)))
    expect(texts(buf)).toEqual(['c', 'dé', ''])
    expect(buf.src[0]).toBe(buf.src[1]) // one string, not one per line
    buf.append(5, decoded(lines(5, 1)))
    expect(texts(buf)).toEqual(['dé', '', 'line 5'])
    buf.resize(2)
    expect(texts(buf)).toEqual(['', 'line 5'])
    expect(buf.tsAt(buf.firstSeq)).toBe(5)
    buf.resize(4)
    buf.append(6, decodeBatch(2, encodeBatch(lines(6, 2))))
    expect(texts(buf)).toEqual(['', 'line 5', 'line 6', 'line 7'])
    expect(buf.dropped).toBe(4)
  })
})
