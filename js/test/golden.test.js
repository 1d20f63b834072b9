// The bytes the kernel sends (tests/fixtures/log_batch.bin, pinned to the kernel's encoder by
// tests/test_batch_golden.py) decode into the lines of tests/fixtures/log_batch.json, and the
// log view shows them.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { decodeBatch } from '../src/batch.js'
import { LogView } from '../src/logview.js'
import { attachStore } from '../src/store.js'
import { encodeBatch, fakeModel, manualFrames } from './helpers.js'

// A path, not a URL: the test environment (happy-dom) replaces the global URL.
const fixtures = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'tests', 'fixtures')
const golden = JSON.parse(readFileSync(join(fixtures, 'log_batch.json'), 'utf8'))
const bin = readFileSync(join(fixtures, 'log_batch.bin'))

/** The buffers as JupyterLab hands them to a widget: one DataView per buffer. */
function buffers() {
  const out = []
  let at = 0
  for (const size of golden.buffer_sizes) {
    const own = new Uint8Array(size)
    own.set(bin.subarray(at, at + size))
    out.push(new DataView(own.buffer))
    at += size
  }
  expect(at).toBe(bin.length)
  return out
}

const cleanups = []
afterEach(() => {
  while (cleanups.length) cleanups.pop()()
})

describe('the golden log batch', () => {
  it('decodes into its lines with the shipped decoder', () => {
    const b = decodeBatch(golden.message.count, buffers())
    expect(b).not.toBeNull()
    const got = Array.from({ length: b.count }, (_, i) => ({ text: b.line(i), ts: b.ts[i], origin: b.origin[i] }))
    expect(got).toEqual(golden.lines.map(({ text, ts, origin }) => ({ text, ts, origin })))
  })

  it('is what the tests\' encoder makes of its lines, so every JS test sends the kernel\'s form', () => {
    const made = encodeBatch(golden.lines.map((l) => [l.ts, l.origin, l.text]))
    expect(made.map((v) => v.byteLength)).toEqual(golden.buffer_sizes)
    const bytes = new Uint8Array(bin.length)
    let at = 0
    for (const v of made) {
      bytes.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), at)
      at += v.byteLength
    }
    expect(bytes).toEqual(new Uint8Array(bin))
  })

  it('reaches the log view as the message the kernel sends', () => {
    const model = fakeModel()
    const store = attachStore(model)
    const frames = manualFrames()
    const view = new LogView({ store, send: (m) => model.send(m), name: () => 'golden', env: frames })
    document.body.append(view.el)
    cleanups.push(() => {
      view.destroy()
      store.dispose()
      view.el.remove()
    })
    model.receive(golden.message, buffers())
    frames.run()
    const rows = [...view.el.querySelectorAll('.frw-row')].map((r) => r.textContent)
    expect(rows).toEqual(golden.lines.map((l) => l.shown ?? l.text))
    expect(view.el.querySelectorAll('script, img, b')).toHaveLength(0)
    const buf = store.buffer(golden.message.attempt)
    expect(buf.done).toBe(true)
    expect(buf.tsAt(buf.firstSeq + 7)).toBe(golden.lines[7].ts)
    expect(buf.originAt(buf.firstSeq + 7)).toBe(2)
  })
})
