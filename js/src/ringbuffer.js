/**
 * A bounded log of one attempt: the newest `capacity` lines, oldest first.
 *
 *     const buf = new LineBuffer(3)
 *     buf.append(0, decodeBatch(msg.count, buffers))   // -> { added: 1, skipped: 0, gap: 0 }
 *
 * Two numberings:
 * - the *log index* is the kernel's 0-based position of a line in the attempt's log. `end` is
 *   the log index of the next line wanted; everything below it was either received or lost.
 * - the *seq* is this buffer's own counter of held lines; held lines are `firstSeq..nextSeq-1`.
 *   A line keeps its seq while it is held, so views can remember positions across appends.
 *
 * `dropped` counts lines of the log that are not held: evicted by the capacity, or never
 * received because the kernel's own bounded buffer dropped them (a gap in `first`).
 *
 * A line's text is held as a span of a larger string: a binary batch (batch.js) is decoded into
 * one string and its lines keep that string plus two offsets, so the ring holds a few objects per
 * message instead of one string per line; `textAt` slices only the lines asked for.
 */
export class LineBuffer {
  constructor(capacity = 100000) {
    this.capacity = sanitizeCapacity(capacity)
    this.src = [] // the string a line is a span of
    this.from = []
    this.to = []
    this.ts = []
    this.origin = []
    this.head = 0 // slot of the oldest held line
    this.firstSeq = 0
    this.nextSeq = 0
    this.end = 0
    this.done = false
  }

  get size() {
    return this.nextSeq - this.firstSeq
  }

  get dropped() {
    return this.end - this.size
  }

  /**
   * Add a decoded batch (batch.js) whose first line has log index `first`. Lines already held
   * (a replay) are skipped; a jump past `end` counts the missing lines as dropped.
   */
  append(first, lines) {
    const count = lines.count
    let skipped = 0
    let gap = 0
    let start = 0
    if (first < this.end) {
      skipped = Math.min(this.end - first, count)
      start = skipped
    } else if (first > this.end) {
      gap = first - this.end
    }
    if (start >= count) {
      if (gap) this.end = first // an empty batch past the end: those lines are gone too
      return { added: 0, skipped, gap }
    }
    const { ts, origin, text, offsets } = lines
    for (let i = start; i < count; i++) this.push(ts[i], origin[i], text, offsets[i], offsets[i + 1])
    const added = count - start
    this.end = first + count
    return { added, skipped, gap }
  }

  /** Add one line: `src.slice(from, to)`, or all of `src` when `from`/`to` are left out. */
  push(ts, origin, src, from = 0, to = src.length) {
    const cap = this.capacity
    if (this.src.length < cap && this.head === 0) {
      this.src.push(src)
      this.from.push(from)
      this.to.push(to)
      this.ts.push(ts)
      this.origin.push(origin)
    } else {
      const slot = this.head
      this.src[slot] = src
      this.from[slot] = from
      this.to[slot] = to
      this.ts[slot] = ts
      this.origin[slot] = origin
      this.head = (slot + 1) % cap
      this.firstSeq++
    }
    this.nextSeq++
  }

  slot(seq) {
    return (this.head + (seq - this.firstSeq)) % this.src.length
  }

  has(seq) {
    return seq >= this.firstSeq && seq < this.nextSeq
  }

  textAt(seq) {
    const slot = this.slot(seq)
    return this.src[slot].slice(this.from[slot], this.to[slot])
  }

  tsAt(seq) {
    return this.ts[this.slot(seq)]
  }

  originAt(seq) {
    return this.origin[this.slot(seq)]
  }

  /** Change the capacity, keeping the newest lines. */
  resize(capacity) {
    capacity = sanitizeCapacity(capacity)
    if (capacity === this.capacity) return
    const keep = Math.min(this.size, capacity)
    const from = this.nextSeq - keep
    const cols = ['src', 'from', 'to', 'ts', 'origin']
    const next = cols.map(() => new Array(keep))
    for (let i = 0; i < keep; i++) {
      const slot = this.slot(from + i)
      cols.forEach((c, k) => (next[k][i] = this[c][slot]))
    }
    cols.forEach((c, k) => (this[c] = next[k]))
    this.head = 0
    this.firstSeq = from
    this.capacity = capacity
  }
}

function sanitizeCapacity(n) {
  n = Math.floor(Number(n))
  return Number.isFinite(n) && n >= 1 ? n : 100000
}
