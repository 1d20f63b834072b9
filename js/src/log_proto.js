/**
 * TailLogs in protobuf's binary form, the only call the page makes that way: the service sends
 * its pre-serialised log batches as they are (the JSON codec would parse and re-encode every
 * line on the service's event loop, about 7x the time for a long log). Just the fields needed:
 *
 *     TailLogsRequest { action_id = 1 { run = 1 { org = 1, project = 2, domain = 3, name = 4 }, name = 2 }, attempt = 2 }
 *     TailLogsResponse { repeated logs = 1 { repeated lines = 1 { timestamp = 1 { seconds = 1, nanos = 2 },
 *                                                                 message = 2, originator = 3 } } }
 *
 *     const body = encodeTailLogsRequest({ run: { project, domain, name }, name: 'a0' }, 1)
 *     const batch = decodeTailLogsResponse(bytes)   // { texts, ts, origin }
 */
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8') // invalid sequences become U+FFFD

function varint(out, n) {
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
}

function field(out, number, bytes) {
  varint(out, (number << 3) | 2)
  varint(out, bytes.length)
  for (const b of bytes) out.push(b)
}

const str = (s) => encoder.encode(String(s ?? ''))

function message(parts) {
  const out = []
  for (const [number, bytes] of parts) if (bytes.length) field(out, number, bytes)
  return out
}

export function encodeTailLogsRequest(actionId, attempt) {
  const run = actionId?.run ?? {}
  const runId = message([[1, str(run.org)], [2, str(run.project)], [3, str(run.domain)], [4, str(run.name)]])
  const action = message([[1, runId], [2, str(actionId?.name)]])
  const out = message([[1, action]])
  if (attempt > 0) {
    varint(out, (2 << 3) | 0)
    varint(out, attempt)
  }
  return new Uint8Array(out)
}

class Reader {
  constructor(buf, start = 0, end = buf.length) {
    this.buf = buf
    this.pos = start
    this.end = end
  }

  varint() {
    let result = 0
    let scale = 1
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('truncated varint')
      const b = this.buf[this.pos++]
      result += (b & 0x7f) * scale
      if (b < 0x80) return result
      scale *= 128
    }
    throw new Error('varint too long')
  }

  /** The next field as [number, wire type]; a length-delimited one's value is [start, end). */
  next() {
    const key = this.varint()
    const wire = key & 7
    const number = Math.floor(key / 8)
    if (wire === 0) return [number, wire, this.varint()]
    if (wire === 2) {
      const len = this.varint()
      const start = this.pos
      this.pos += len
      if (this.pos > this.end) throw new Error('truncated field')
      return [number, wire, start, this.pos]
    }
    if (wire === 1) this.pos += 8
    else if (wire === 5) this.pos += 4
    else throw new Error(`wire type ${wire} not handled`)
    if (this.pos > this.end) throw new Error('truncated field')
    return [number, wire]
  }

  done() {
    return this.pos >= this.end
  }
}

function readLine(buf, start, end, out) {
  const r = new Reader(buf, start, end)
  let ms = 0
  let text = ''
  let origin = 0
  while (!r.done()) {
    const [number, wire, a, b] = r.next()
    if (number === 1 && wire === 2) {
      const t = new Reader(buf, a, b)
      let seconds = 0
      let nanos = 0
      while (!t.done()) {
        const [n, w, v] = t.next()
        if (n === 1 && w === 0) seconds = v
        else if (n === 2 && w === 0) nanos = v
      }
      ms = seconds * 1000 + Math.floor(nanos / 1e6)
    } else if (number === 2 && wire === 2) {
      text = decoder.decode(buf.subarray(a, b))
    } else if (number === 3 && wire === 0) {
      origin = a > 255 ? 0 : a
    }
  }
  out.texts.push(text.endsWith('\n') ? text.slice(0, -1) : text)
  out.ts.push(ms)
  out.origin.push(origin)
}

/** The lines of one TailLogsResponse; throws on bytes that are not one. */
export function decodeTailLogsResponse(buf) {
  const out = { texts: [], ts: [], origin: [] }
  const r = new Reader(buf)
  while (!r.done()) {
    const [number, wire, a, b] = r.next()
    if (number !== 1 || wire !== 2) continue
    const logs = new Reader(buf, a, b)
    while (!logs.done()) {
      const [n, w, c, d] = logs.next()
      if (n === 1 && w === 2) readLine(buf, c, d, out)
    }
  }
  return out
}
