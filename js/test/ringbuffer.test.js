import { describe, expect, it } from 'vitest'
import { LineBuffer } from '../src/ringbuffer.js'
import { decoded, lines } from './helpers.js'

const texts = (buf) => {
  const out = []
  for (let s = buf.firstSeq; s < buf.nextSeq; s++) out.push(buf.textAt(s))
  return out
}

describe('LineBuffer', () => {
  it('holds lines oldest first', () => {
    const buf = new LineBuffer(10)
    buf.append(0, decoded([[1, 1, 'a'], [2, 2, 'b'], [3, 0, 'c']]))
    expect(texts(buf)).toEqual(['a', 'b', 'c'])
    expect(buf.size).toBe(3)
    expect(buf.end).toBe(3)
    expect(buf.dropped).toBe(0)
    expect(buf.tsAt(buf.firstSeq + 1)).toBe(2)
    expect(buf.originAt(buf.firstSeq + 1)).toBe(2)
  })

  it('keeps only the newest `capacity` lines and counts the rest as dropped', () => {
    const buf = new LineBuffer(5)
    buf.append(0, decoded(lines(0, 7)))
    buf.append(7, decoded(lines(7, 6)))
    expect(buf.size).toBe(5)
    expect(buf.end).toBe(13)
    expect(buf.dropped).toBe(8)
    expect(texts(buf)).toEqual(['line 8', 'line 9', 'line 10', 'line 11', 'line 12'])
    expect(buf.firstSeq).toBe(8)
    expect(buf.has(7)).toBe(false)
    expect(buf.has(12)).toBe(true)
  })

  it('skips lines it already holds when a batch is replayed', () => {
    const buf = new LineBuffer(100)
    buf.append(0, decoded(lines(0, 10)))
    expect(buf.append(0, decoded(lines(0, 10)))).toEqual({ added: 0, skipped: 10, gap: 0 })
    expect(buf.append(5, decoded(lines(5, 10)))).toEqual({ added: 5, skipped: 5, gap: 0 })
    expect(texts(buf)).toEqual(lines(0, 15).map((l) => l[2].trimEnd()))
    expect(new Set(texts(buf)).size).toBe(15)
  })

  it('skips a replay of lines it has already dropped', () => {
    const buf = new LineBuffer(3)
    buf.append(0, decoded(lines(0, 10)))
    buf.append(0, decoded(lines(0, 10)))
    expect(texts(buf)).toEqual(['line 7', 'line 8', 'line 9'])
    expect(buf.dropped).toBe(7)
  })

  it('counts a gap (lines the kernel dropped) as dropped', () => {
    const buf = new LineBuffer(100)
    buf.append(0, decoded(lines(0, 5)))
    expect(buf.append(20, decoded(lines(20, 5)))).toEqual({ added: 5, skipped: 0, gap: 15 })
    expect(buf.size).toBe(10)
    expect(buf.end).toBe(25)
    expect(buf.dropped).toBe(15)
  })

  it('starts past zero when the first batch it sees is late', () => {
    const buf = new LineBuffer(100)
    buf.append(1000, decoded(lines(1000, 2)))
    expect(buf.dropped).toBe(1000)
    expect(texts(buf)).toEqual(['line 1000', 'line 1001'])
  })

  it('resizes keeping the newest lines, in both directions', () => {
    const buf = new LineBuffer(5)
    buf.append(0, decoded(lines(0, 8)))
    buf.resize(3)
    expect(texts(buf)).toEqual(['line 5', 'line 6', 'line 7'])
    expect(buf.dropped).toBe(5)
    buf.resize(10)
    buf.append(8, decoded(lines(8, 4)))
    expect(texts(buf)).toEqual(['line 5', 'line 6', 'line 7', 'line 8', 'line 9', 'line 10', 'line 11'])
    expect(buf.end).toBe(12)
  })

  it('wraps many times without losing order', () => {
    const buf = new LineBuffer(7)
    for (let i = 0; i < 100; i += 3) buf.append(i, decoded(lines(i, 3)))
    expect(texts(buf)).toEqual(lines(95, 7).map((l) => l[2].trimEnd()))
  })

  it('tolerates junk capacity', () => {
    const buf = new LineBuffer('nope')
    expect(buf.capacity).toBe(100000)
    buf.append(0, decoded(lines(0, 2)))
    expect(texts(buf)).toEqual(['line 0', 'line 1'])
  })
})
