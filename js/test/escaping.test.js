// Log lines, run names, errors and outputs are untrusted: they must end up as text only.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { renderWidget } from '../src/widget.js'
import { attachStore } from '../src/store.js'
import { fakeModel, logsMsg, manualFrames } from './helpers.js'

const IMG = '<img src=x onerror=alert(1)>'
const SCRIPT = '<script>alert(1)</script>'
const cleanups = []
afterEach(() => {
  while (cleanups.length) cleanups.pop()()
  document.body.replaceChildren()
})

function mount(overrides) {
  const model = fakeModel(overrides)
  const store = attachStore(model)
  const el = document.createElement('div')
  document.body.append(el)
  const frames = manualFrames()
  const cleanup = renderWidget({ model, el, env: { frames } })
  cleanups.push(() => {
    cleanup()
    store.dispose()
  })
  return { model, el, frames }
}

const dangerous = (el) => el.querySelectorAll('img, script, iframe, object, embed, svg, b, i')

describe('escaping', () => {
  it('shows HTML, ANSI, NUL and multi-byte text of a binary batch as text', () => {
    const alert = vi.fn()
    vi.stubGlobal('alert', alert)
    const { model, el, frames } = mount()
    model.receive(...logsMsg(1, 0, [
      [0, 1, `${IMG} 😀 日本`],
      [0, 1, `nul\u0000${SCRIPT}`],
      [0, 2, `\x1b[31m${IMG}\x1b[0m café`],
    ]))
    frames.run()
    const rows = [...el.querySelectorAll('.frw-row')].map((r) => r.textContent)
    // the NUL is not rendered, as in any line
    expect(rows).toEqual([`${IMG} 😀 日本`, `nul${SCRIPT}`, `${IMG} café`])
    expect(dangerous(el)).toHaveLength(0)
    expect(alert).not.toHaveBeenCalled()
    vi.unstubAllGlobals()
  })

  it('shows HTML in log lines as text and creates no element', () => {
    const alert = vi.fn()
    vi.stubGlobal('alert', alert)
    const { model, el, frames } = mount()
    model.receive(...logsMsg(1, 0, [
      [0, 1, `${IMG}`],
      [0, 1, `${SCRIPT}`],
      [0, 1, `\x1b[31m${IMG}\x1b[0m <b>bold?</b>`],
      [0, 2, '<a href="javascript:alert(1)">x</a>'],
    ]))
    frames.run()
    const rows = [...el.querySelectorAll('.frw-row')].map((r) => r.textContent)
    expect(rows).toEqual([IMG, SCRIPT, `${IMG} <b>bold?</b>`, '<a href="javascript:alert(1)">x</a>'])
    expect(dangerous(el)).toHaveLength(0)
    expect(el.querySelectorAll('a')).toHaveLength(1) // only the run-name link
    expect(alert).not.toHaveBeenCalled()
    vi.unstubAllGlobals()
  })

  it('shows a run name, task name, error and outputs with HTML as text', () => {
    const { el } = mount({
      run_name: `run${IMG}`,
      task_name: SCRIPT,
      phase: 'failed',
      error: { kind: `<i>USER</i>`, code: `<b>E</b>`, message: `${IMG}\nsecond ${SCRIPT}` },
      outputs: `o0: ${IMG}`,
      connection: { state: 'reconnecting', message: SCRIPT },
      notice: IMG,
    })
    expect(dangerous(el)).toHaveLength(0)
    expect(el.querySelector('.frw-name').textContent).toBe(`run${IMG}`)
    expect(el.querySelector('.frw-task').textContent).toBe(SCRIPT)
    expect(el.querySelector('.frw-error-first').textContent).toBe(IMG)
    expect(el.querySelector('.frw-error-details pre').textContent).toBe(`${IMG}\nsecond ${SCRIPT}`)
    expect(el.querySelector('.frw-outputs pre').textContent).toBe(`o0: ${IMG}`)
    expect(el.querySelector('.frw-banner').textContent).toBe(`Reconnecting… ${SCRIPT}`)
    expect(el.querySelector('.frw-notice').textContent).toBe(IMG)
  })

  it.each([
    'javascript:alert(1)',
    'JAVASCRIPT:alert(1)',
    ' javascript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    'vbscript:x',
    '//evil.example.com/x',
    'http://',
    '',
  ])('does not turn %j into a link', (url) => {
    const { el } = mount({ run_url: url })
    expect(el.querySelector('.frw-name a')).toBeNull()
    expect(el.querySelector('.frw-name').textContent).toBe('r-abc123')
  })

  it('links http(s) run URLs in a new tab without opener', () => {
    const { el } = mount({ run_url: 'https://flyte.example.com/v2/runs/r-abc123?x=1' })
    const a = el.querySelector('.frw-name a')
    expect(a.getAttribute('href')).toBe('https://flyte.example.com/v2/runs/r-abc123?x=1')
    expect(a.getAttribute('target')).toBe('_blank')
    expect(a.getAttribute('rel')).toContain('noopener')
  })
})
