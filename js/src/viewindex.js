/**
 * Which held lines a log view shows: all of them, or those that pass the filter (a
 * case-insensitive substring of the text without ANSI codes) and the system-lines toggle.
 *
 *     const index = new ViewIndex(buffer, { query: 'error', showSystem: false })
 *     index.scan(performance.now() + 8)   // resumable: scans until the deadline
 *     index.length; index.seqAt(0)
 *
 * A filtered index scans the whole held buffer oldest first and then each new line once, in
 * slices bounded by a deadline, so filtering 100,000 lines never blocks a frame for long.
 */
import { stripAnsi } from './ansi.js'

const SYSTEM = 2

export class ViewIndex {
  constructor(buffer, { query = '', showSystem = true } = {}) {
    this.buffer = buffer
    this.query = String(query).toLowerCase()
    this.showSystem = showSystem
    this.all = !this.query && showSystem
    this.seqs = [] // matching seqs, ascending; seqs[lo..] are still held
    this.lo = 0
    this.scanned = buffer.firstSeq // the next seq to test
    this.removed = 0 // rows that left the front of the view (evicted) so far
  }

  get length() {
    return this.all ? this.buffer.size : this.seqs.length - this.lo
  }

  get complete() {
    return this.all || this.scanned >= this.buffer.nextSeq
  }

  /** A counter that grows by one for each row that leaves the front of the view. */
  get base() {
    return this.all ? this.buffer.firstSeq : this.removed
  }

  seqAt(row) {
    return this.all ? this.buffer.firstSeq + row : this.seqs[this.lo + row]
  }

  matches(seq) {
    const buf = this.buffer
    if (!this.showSystem && buf.originAt(seq) === SYSTEM) return false
    return !this.query || stripAnsi(buf.textAt(seq)).toLowerCase().includes(this.query)
  }

  /** Forget evicted lines and test new ones until `deadline`; true once caught up. */
  scan(deadline, now = () => performance.now()) {
    if (this.all) return true
    const first = this.buffer.firstSeq
    const before = this.lo
    while (this.lo < this.seqs.length && this.seqs[this.lo] < first) this.lo++
    this.removed += this.lo - before
    if (this.lo > 4096 && this.lo * 2 > this.seqs.length) {
      this.seqs = this.seqs.slice(this.lo)
      this.lo = 0
    }
    let seq = Math.max(this.scanned, first)
    const end = this.buffer.nextSeq
    while (seq < end) {
      if (this.matches(seq)) this.seqs.push(seq)
      seq++
      if ((seq & 15) === 0 && now() > deadline) break
    }
    this.scanned = seq
    return seq >= end
  }
}
