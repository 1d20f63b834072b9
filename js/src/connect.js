/**
 * The Connect protocol with the JSON codec, over fetch: what the run page needs of the service
 * on its own origin (connectrpc.com/docs/protocol). Unary calls are one POST of
 * `application/json`; server streams are `application/connect+json` envelopes (a flag byte, a
 * big-endian length, the message), the last one (flag 2) holding the end of the stream.
 *
 *     const rpc = new ConnectClient({ token: () => token })
 *     const details = await rpc.unary('flyteidl2.workflow.RunService', 'GetRunDetails', { runId })
 *     for await (const msg of rpc.stream('flyteidl2.workflow.RunService', 'WatchRuns', req, signal)) ...
 */

export class RpcError extends Error {
  constructor(code, message) {
    super(message || code)
    this.code = code
  }
}

const decoder = new TextDecoder()
const encoder = new TextEncoder()

// What an HTTP status means when the body does not say (connect's mapping).
const HTTP_CODES = { 400: 'invalid_argument', 401: 'unauthenticated', 403: 'permission_denied', 404: 'unimplemented',
  429: 'resource_exhausted', 501: 'unimplemented', 502: 'unavailable', 503: 'unavailable', 504: 'unavailable' }

function errorOf(json, status) {
  const code = typeof json?.code === 'string' ? json.code : HTTP_CODES[status] ?? 'unknown'
  const message = typeof json?.message === 'string' ? json.message : `HTTP ${status}`
  return new RpcError(code, message)
}

function parse(text) {
  try {
    return JSON.parse(text)
  } catch {
    return null
  }
}

function join(chunks, total) {
  const out = new Uint8Array(total)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.length
  }
  return out
}

export class ConnectClient {
  constructor({ base = '', token = () => '', fetchFn = (...a) => globalThis.fetch(...a) } = {}) {
    this.base = base
    this.token = token
    this.fetch = fetchFn
  }

  headers(contentType) {
    const headers = { 'content-type': contentType, 'connect-protocol-version': '1' }
    const token = this.token()
    if (token) headers.authorization = `Bearer ${token}`
    return headers
  }

  async unary(service, method, body, signal) {
    let response
    try {
      response = await this.fetch(`${this.base}/${service}/${method}`, {
        method: 'POST', headers: this.headers('application/json'), body: JSON.stringify(body), signal,
      })
    } catch (e) {
      if (signal?.aborted) throw e
      throw new RpcError('unavailable', `the service did not answer (${e.message})`)
    }
    const json = parse(await response.text())
    if (!response.ok) throw errorOf(json, response.status)
    return json ?? {}
  }

  /** The messages of a server stream; ends with the stream, throws RpcError on its error. */
  async * stream(service, method, body, signal) {
    const payload = encoder.encode(JSON.stringify(body))
    for await (const data of this.frames(service, method, payload, 'application/connect+json', signal)) {
      yield parse(decoder.decode(data)) ?? {}
    }
  }

  /** The same with protobuf's binary codec: `payload` the request's bytes, each message's bytes out. */
  streamProto(service, method, payload, signal) {
    return this.frames(service, method, payload, 'application/connect+proto', signal)
  }

  async * frames(service, method, payload, contentType, signal) {
    const frame = new Uint8Array(5 + payload.length)
    new DataView(frame.buffer).setUint32(1, payload.length)
    frame.set(payload, 5)
    let response
    try {
      response = await this.fetch(`${this.base}/${service}/${method}`, {
        method: 'POST', headers: this.headers(contentType), body: frame, signal,
      })
    } catch (e) {
      if (signal?.aborted) throw e
      throw new RpcError('unavailable', `the service did not answer (${e.message})`)
    }
    if (!response.ok) throw errorOf(parse(await response.text()), response.status)
    const reader = response.body.getReader()
    // Chunks are kept apart until a whole frame is in: joining on every chunk would copy a
    // 2 MiB log batch again for each 16 kB that arrives.
    const chunks = []
    let held = 0
    let need = 5
    try {
      for (;;) {
        while (held >= need) {
          const buf = chunks.length === 1 ? chunks[0] : join(chunks, held)
          chunks.length = 0
          const size = new DataView(buf.buffer, buf.byteOffset, 5).getUint32(1)
          if (buf.length < 5 + size) {
            chunks.push(buf)
            need = 5 + size
            break
          }
          const flags = buf[0]
          const data = buf.subarray(5, 5 + size)
          const rest = buf.subarray(5 + size)
          if (rest.length) chunks.push(rest)
          held = rest.length
          need = 5
          if (flags & 2) {
            // The end of the stream is JSON whatever the codec.
            const json = parse(decoder.decode(data))
            if (json?.error) throw errorOf(json.error, 200)
            return
          }
          yield data
        }
        const { done, value } = await reader.read()
        if (done) throw new RpcError('unavailable', 'the service closed the stream')
        chunks.push(value)
        held += value.length
      }
    } finally {
      reader.cancel().catch(() => {})
    }
  }
}

/** Epoch ms of a protobuf JSON Timestamp ("2026-01-02T03:04:05.123456789Z"), 0 when absent. */
export function timestampMs(ts) {
  if (typeof ts !== 'string' || !ts) return 0
  // Date.parse wants at most milliseconds.
  const ms = Date.parse(ts.replace(/(\.\d{3})\d+/, '$1'))
  return Number.isFinite(ms) ? ms : 0
}

/** 'running' from 'ACTION_PHASE_RUNNING' (the widget's phase names). */
export function phaseKey(phase) {
  if (typeof phase !== 'string' || !phase) return 'unspecified'
  return phase.replace(/^ACTION_PHASE_/, '').toLowerCase()
}
