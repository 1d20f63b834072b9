import { describe, expect, it } from 'vitest'
import { decodeBatch } from '../src/batch.js'
import { ConnectClient, phaseKey, RpcError, timestampMs } from '../src/connect.js'
import { decodeTailLogsResponse, encodeTailLogsRequest } from '../src/log_proto.js'
import { encodeColumns, errorOf, PageTree } from '../src/page_feed.js'
import { encodeRows, rowOf } from '../src/page_list.js'
import { decodeRows } from '../src/run_rows.js'
import { TreeModel } from '../src/tree.js'

const enc = new TextEncoder()
const fromHex = (hex) => new Uint8Array(hex.match(/../g).map((b) => parseInt(b, 16)))
const toHex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')

function envelope(flags, obj) {
  const body = enc.encode(JSON.stringify(obj))
  const out = new Uint8Array(5 + body.length)
  out[0] = flags
  new DataView(out.buffer).setUint32(1, body.length)
  out.set(body, 5)
  return out
}

/** A fetch answering with `chunks` as the body, cut at arbitrary points. */
function fakeFetch(chunks, { status = 200, calls = [] } = {}) {
  return async (url, init) => {
    calls.push({ url, init })
    const stream = new ReadableStream({
      start(c) {
        for (const chunk of chunks) c.enqueue(chunk)
        c.close()
      },
    })
    return new Response(stream, { status })
  }
}

async function collect(iter) {
  const out = []
  for await (const x of iter) out.push(x)
  return out
}

describe('ConnectClient', () => {
  it('reads envelopes split across chunks and ends at the end-of-stream envelope', async () => {
    const all = new Uint8Array([...envelope(0, { a: 1 }), ...envelope(0, { b: 2 }), ...envelope(2, {})])
    const chunks = [all.slice(0, 3), all.slice(3, 20), all.slice(20)]
    const calls = []
    const rpc = new ConnectClient({ token: () => 'tok', fetchFn: fakeFetch(chunks, { calls }) })
    expect(await collect(rpc.stream('svc', 'M', { x: 1 }))).toEqual([{ a: 1 }, { b: 2 }])
    expect(calls[0].url).toBe('/svc/M')
    expect(calls[0].init.headers['content-type']).toBe('application/connect+json')
    expect(calls[0].init.headers.authorization).toBe('Bearer tok')
  })

  it('throws the end-of-stream error with its code', async () => {
    const rpc = new ConnectClient({ fetchFn: fakeFetch([envelope(2, { error: { code: 'not_found', message: 'no run' } })]) })
    await expect(collect(rpc.stream('svc', 'M', {}))).rejects.toMatchObject({ code: 'not_found', message: 'no run' })
  })

  it('a stream cut before its end is unavailable, not a quiet end', async () => {
    const rpc = new ConnectClient({ fetchFn: fakeFetch([envelope(0, { a: 1 })]) })
    await expect(collect(rpc.stream('svc', 'M', {}))).rejects.toBeInstanceOf(RpcError)
  })

  it('a refused unary call carries the code of its JSON body; no token, no header', async () => {
    const body = enc.encode(JSON.stringify({ code: 'unauthenticated', message: 'needs its token' }))
    const calls = []
    const rpc = new ConnectClient({ fetchFn: fakeFetch([body], { status: 401, calls }) })
    await expect(rpc.unary('svc', 'M', {})).rejects.toMatchObject({ code: 'unauthenticated' })
    expect(calls[0].init.headers.authorization).toBeUndefined()
  })
})

describe('page feed', () => {
  it('timestamps and phases from protobuf JSON', () => {
    expect(timestampMs('2026-11-29T18:05:54.256495464Z')).toBe(Date.UTC(2026, 10, 29, 18, 5, 54, 256))
    expect(timestampMs(undefined)).toBe(0)
    expect(phaseKey('ACTION_PHASE_TIMED_OUT')).toBe('timed_out')
  })

  it('binary TailLogs responses become the batch the widget decodes, non-ASCII offsets in UTF-16 units', () => {
    // Serialised by protobuf in Python (flyteidl2 TailLogsResponse): two Logs, three lines, one
    // with a field this decoder skips (short_pod_name).
    const bytes = fromHex('0a2e0a1e0a0c0880f2d6ca061080cab5ee01120c68c3a96c6c6f20f09f9a800a18010a0c12083c623e783c2f623e18020a0e0a0c120574686972642203706f64')
    const lines = decodeTailLogsResponse(bytes)
    expect(lines.texts).toEqual(['héllo 🚀', '<b>x</b>', 'third'])
    expect(lines.origin).toEqual([1, 2, 0])
    expect(lines.ts[0]).toBe(Date.UTC(2026, 0, 1, 0, 0, 0, 500))
    const batch = decodeBatch(3, encodeColumns(lines))
    expect([0, 1, 2].map((i) => batch.line(i))).toEqual(['héllo 🚀', '<b>x</b>', 'third'])
    expect(() => decodeTailLogsResponse(bytes.subarray(0, 20))).toThrow()
  })

  it('the TailLogs request is what protobuf serialises', () => {
    const request = encodeTailLogsRequest({ run: { project: 'p', domain: 'd', name: 'r1' }, name: 'a0' }, 300)
    expect(toHex(request)).toBe('0a100a0a1201701a0164220272311202613010ac02')
  })

  it('actions become tree messages the TreeModel applies; a child before its parent', () => {
    const tree = new PageTree()
    const run = { project: 'p', domain: 'd', name: 'r' }
    tree.merge({ id: { run, name: 'c1' }, metadata: { parent: 'a0', group: 'g', task: { shortName: 'child' } }, status: { phase: 'ACTION_PHASE_RUNNING' } })
    tree.merge({ id: { run, name: 'a0' }, metadata: { task: { shortName: 'main' } }, status: { phase: 'ACTION_PHASE_RUNNING', startTime: '2026-01-01T00:00:00Z' } })
    const model = new TreeModel()
    expect(model.apply(tree.message())).toBe(true)
    expect(model.size).toBe(2)
    const root = model.name.indexOf('a0')
    const child = model.name.indexOf('c1')
    expect(model.parent[child]).toBe(root)
    expect(model.group[child]).toBe('g')
    expect(model.task[root]).toBe('main')
    expect(model.phase[root]).toBe(4)
    expect(model.start[root]).toBe(Date.UTC(2026, 0, 1))
    expect(tree.message()).toBeNull() // nothing changed since
    // A watch update with only the phase does not erase the task name.
    tree.merge({ id: { run, name: 'c1' }, status: { phase: 'ACTION_PHASE_SUCCEEDED' } })
    expect(model.apply(tree.message())).toBe(true)
    expect(model.task[child]).toBe('child')
    expect(model.phase[child]).toBe(5)
  })

  it('the error panel from errorInfo or abortInfo', () => {
    expect(errorOf({ errorInfo: { kind: 'KIND_USER', message: 'boom' } })).toEqual({ kind: 'USER', code: '', message: 'boom' })
    expect(errorOf({ abortInfo: { reason: 'stop' } })).toEqual({ kind: 'ABORTED', code: '', message: 'stop' })
    expect(errorOf({})).toEqual({})
  })
})

describe('runs list rows', () => {
  it('WatchRuns runs become rows messages run_rows.js decodes', () => {
    const run = {
      action: {
        id: { run: { project: 'p', domain: 'd', name: 'r1' }, name: 'a0' },
        metadata: { task: { shortName: '<img src=x>', id: { name: 'm.t' } }, executedBy: { user: { spec: { userHandle: 'ann' } } } },
        status: { phase: 'ACTION_PHASE_FAILED', startTime: '2026-01-01T00:00:01Z', endTime: '2026-01-01T00:00:03Z' },
      },
    }
    const row = rowOf(run)
    const [msg, buffers] = encodeRows([row, { ...row, name: 'r2', phase: 'running', end: 0 }], true)
    expect(msg.reset).toBe(true)
    expect(decodeRows(msg, buffers)).toEqual([
      { name: 'r1', phase: 'failed', task: '<img src=x>', user: 'ann', start: Date.UTC(2026, 0, 1, 0, 0, 1), end: Date.UTC(2026, 0, 1, 0, 0, 3) },
      { name: 'r2', phase: 'running', task: '<img src=x>', user: 'ann', start: Date.UTC(2026, 0, 1, 0, 0, 1), end: 0 },
    ])
  })
})
