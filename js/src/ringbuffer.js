/**
 * A bounded log of one attempt: the newest `capacity` lines, oldest first.
 *
 *     const buf = new LineBuffer(3)
 *     buf.append(0, [[ts, 1, 'hello\n']])   // -> { added: 1, skipped: 0, gap: 0 }
 *
 * Two numberings:
 * - the *log index* is the kernel's 0-based position of a line in the attempt's log. `end` is
 *   the log index of the next line wanted; everything below it was either received or lost.
 * - the *seq* is this buffer's own counter of held lines; held lines are `firstSeq..nextSeq-1`.
 *   A line keeps its seq while it is held, so views can remember positions across appends.
 *
 * `dropped` counts lines of the log that are not held: evicted by the capacity, or never
 * received because the kernel's own bounded buffer dropped them (a gap in `first`).
 */
export class LineBuffer {
  constructor(capacity = 100000) {
    this.capacity = sanitizeCapacity(capacity)
    this.text = []
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
   * Add a batch whose first line has log index `first`. Lines already held (a replay) are
   * skipped; a jump past `end` counts the missing lines as dropped.
   */
  append(first, lines) {
    let skipped = 0
    let gap = 0
    let start = 0
    if (first < this.end) {
      skipped = Math.min(this.end - first, lines.length)
      start = skipped
    } else if (first > this.end) {
      gap = first - this.end
    }
    if (start >= lines.length) {
      if (gap) this.end = first // an empty batch past the end: those lines are gone too
      return { added: 0, skipped, gap }
    }
    for (let i = start; i < lines.length; i++) {
      const line = lines[i]
      this.push(Number(line[0]) || 0, Number(line[1]) || 0, stripNewline(line[2]))
    }
    const added = lines.length - start
    this.end = first + lines.length
    return { added, skipped, gap }
  }

  push(ts, origin, text) {
    const cap = this.capacity
    if (this.text.length < cap && this.head === 0) {
      this.text.push(text)
      this.ts.push(ts)
      this.origin.push(origin)
    } else {
      const slot = this.head
      this.text[slot] = text
      this.ts[slot] = ts
      this.origin[slot] = origin
      this.head = (slot + 1) % cap
      this.firstSeq++
    }
    this.nextSeq++
  }

  slot(seq) {
    return (this.head + (seq - this.firstSeq)) % this.text.length
  }

  has(seq) {
    return seq >= this.firstSeq && seq < this.nextSeq
  }

  textAt(seq) {
    return this.text[this.slot(seq)]
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
    const text = new Array(keep)
    const ts = new Array(keep)
    const origin = new Array(keep)
    for (let i = 0; i < keep; i++) {
      const slot = this.slot(from + i)
      text[i] = this.text[slot]
      ts[i] = this.ts[slot]
      origin[i] = this.origin[slot]
    }
    this.text = text
    this.ts = ts
    this.origin = origin
    this.head = 0
    this.firstSeq = from
    this.capacity = capacity
  }
}

function sanitizeCapacity(n) {
  n = Math.floor(Number(n))
  return Number.isFinite(n) && n >= 1 ? n : 100000
}

function stripNewline(text) {
  text = typeof text === 'string' ? text : String(text ?? '')
  if (text.endsWith('\n')) text = text.slice(0, text.endsWith('\r\n') ? -2 : -1)
  return text
}
