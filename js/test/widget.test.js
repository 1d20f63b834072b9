import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import widget from '../src/index.js'
import { ABORT_REASON } from '../src/controls.js'
import { renderWidget } from '../src/widget.js'
import { attachStore } from '../src/store.js'
import { fakeModel, lines, logsMsg, manualFrames, proxy } from './helpers.js'

const cleanups = []
afterEach(() => {
  while (cleanups.length) cleanups.pop()()
  document.body.replaceChildren()
  vi.useRealTimers()
})

function mount(model, { frames = manualFrames(), store = true } = {}) {
  const disposeStore = store ? (() => { const s = attachStore(model); return () => s.dispose() })() : () => {}
  const el = document.createElement('div')
  document.body.append(el)
  const cleanup = renderWidget({ model, el, env: { frames } })
  cleanups.push(() => {
    cleanup()
    disposeStore()
  })
  return { el, frames, cleanup }
}

const button = (el, text) => [...el.querySelectorAll('button')].find((b) => b.textContent === text && !b.hidden && !b.closest('[hidden]'))

describe('header', () => {
  it('shows name, task, badge, elapsed and attempt', () => {
    vi.useFakeTimers()
    const now = Date.now()
    const model = fakeModel({ start_ms: now - 65000, now_ms: now, attempts: 2 })
    const { el } = mount(model)
    expect(el.querySelector('.frw-name a').textContent).toBe('r-abc123')
    expect(el.querySelector('.frw-task').textContent).toBe('train.fit')
    expect(el.querySelector('.frw-badge').textContent).toBe('Running')
    expect(el.querySelector('.frw-elapsed').textContent).toBe('1m 05s')
    expect(el.querySelector('.frw-attempt').textContent).toBe('attempt 2')
    vi.advanceTimersByTime(2000)
    expect(el.querySelector('.frw-elapsed').textContent).toBe('1m 07s')
    model.set('phase', 'succeeded')
    model.set('end_ms', now - 1000)
    expect(el.querySelector('.frw-badge').textContent).toBe('Succeeded')
    expect(el.querySelector('.frw-elapsed').textContent).toBe('1m 04s')
  })

  it('shows the error panel with kind, code, first line and the whole message', () => {
    const model = fakeModel()
    const { el } = mount(model)
    expect(el.querySelector('.frw-error').hidden).toBe(true)
    model.set('error', { kind: 'USER', code: 'ValueError', message: 'bad input\n  at line 3\n  at line 9' })
    const panel = el.querySelector('.frw-error')
    expect(panel.hidden).toBe(false)
    expect(panel.querySelector('.frw-error-kind').textContent).toBe('USER')
    expect(panel.querySelector('.frw-error-code').textContent).toBe('ValueError')
    expect(panel.querySelector('.frw-error-first').textContent).toBe('bad input')
    expect(panel.querySelector('details').hidden).toBe(false)
    expect(panel.querySelector('details pre').textContent).toBe('bad input\n  at line 3\n  at line 9')
    model.set('error', { kind: 'SYSTEM', code: '', message: 'one line' })
    expect(panel.querySelector('details').hidden).toBe(true)
    model.set('error', {})
    expect(panel.hidden).toBe(true)
  })

  it('shows outputs, the reconnecting banner and notices', () => {
    const model = fakeModel()
    const { el } = mount(model)
    expect(el.querySelector('.frw-outputs').hidden).toBe(true)
    model.set('outputs', 'o0: 42')
    expect(el.querySelector('.frw-outputs').hidden).toBe(false)
    expect(el.querySelector('.frw-outputs pre').textContent).toBe('o0: 42')
    model.set('connection', { state: 'reconnecting', message: 'UNAVAILABLE: connection refused' })
    expect(el.querySelector('.frw-banner').textContent).toBe('Reconnecting… UNAVAILABLE: connection refused')
    model.set('connection', { state: 'connected', message: '' })
    expect(el.querySelector('.frw-banner').hidden).toBe(true)
    model.set('notice', 'abort failed: permission denied')
    expect(el.querySelector('.frw-notice').textContent).toBe('abort failed: permission denied')
  })
})

describe('abort and wait', () => {
  it('asks for confirmation and sends exactly one abort', () => {
    const model = fakeModel()
    const { el } = mount(model)
    model.sent.length = 0
    button(el, 'Abort').click()
    expect(model.sent).toEqual([])
    expect(el.querySelector('.frw-confirm').textContent).toContain('Abort run?')
    button(el, 'Cancel').click()
    expect(model.sent).toEqual([])
    expect(el.querySelector('.frw-confirm').hidden).toBe(true)

    button(el, 'Abort').click()
    const yes = button(el, 'Yes, abort')
    yes.click()
    yes.click() // a double click on a stale button
    expect(model.sent).toEqual([{ type: 'abort', reason: ABORT_REASON }])
    const abort = el.querySelector('.frw-abort')
    expect(abort.disabled).toBe(true)
    expect(abort.textContent).toBe('Aborting…')
    abort.click()
    expect(model.sent).toHaveLength(1)

    model.set('busy', 'aborting')
    expect(abort.textContent).toBe('Aborting…')
    model.set('phase', 'aborted')
    model.set('busy', '')
    expect(abort.textContent).toBe('Abort')
    expect(abort.disabled).toBe(true)
    expect(model.sent).toHaveLength(1)
  })

  it('sends at most one abort per model, across views', () => {
    const model = fakeModel()
    const a = mount(model)
    const b = mount(model, { store: false })
    model.sent.length = 0
    button(a.el, 'Abort').click()
    button(b.el, 'Abort').click()
    button(a.el, 'Yes, abort').click()
    expect(b.el.querySelector('.frw-abort').disabled).toBe(true)
    expect(b.el.querySelector('.frw-confirm').hidden).toBe(true)
    b.el.querySelector('.frw-confirm button').click() // the hidden Yes of the second view
    expect(model.sent.filter((m) => m.type === 'abort')).toHaveLength(1)
  })

  it('disables Abort and Wait once the run is terminal', () => {
    for (const phase of ['succeeded', 'failed', 'aborted', 'timed_out', 'recovered']) {
      const model = fakeModel({ phase })
      const { el } = mount(model)
      expect(el.querySelector('.frw-abort').disabled).toBe(true)
      expect(el.querySelector('.frw-wait').disabled).toBe(true)
    }
    const { el } = mount(fakeModel({ phase: 'unknown(42)' }))
    expect(el.querySelector('.frw-abort').disabled).toBe(false)
  })

  it('sends wait and shows Waiting… while busy', () => {
    const model = fakeModel()
    const { el } = mount(model)
    model.sent.length = 0
    const wait = el.querySelector('.frw-wait')
    wait.click()
    wait.click()
    expect(model.sent).toEqual([{ type: 'wait' }])
    expect(wait.textContent).toBe('Waiting…')
    model.set('busy', 'waiting')
    expect(wait.textContent).toBe('Waiting…')
    expect(wait.disabled).toBe(true)
    model.set('phase', 'succeeded')
    model.set('busy', '')
    expect(wait.textContent).toBe('Wait')
    expect(wait.disabled).toBe(true)
  })
})

describe('lifecycle (the anywidget contract)', () => {
  let model
  beforeEach(() => {
    model = fakeModel({ log_attempts: [1, 2] })
  })

  it('sends logs_request on render, and a second view shares the held lines', async () => {
    const layout = {} // the per-widget Layout model anywidget exposes through get('layout')
    const cleanupModel = widget.initialize({ model: proxy(model, layout) })
    const el1 = document.createElement('div')
    const cleanup1 = await widget.render({ model: proxy(model, layout), el: el1 })
    expect(model.sent).toEqual([{ type: 'logs_request', attempt: 2, from: 0 }])
    model.receive(...logsMsg(2, 0, lines(0, 42)))
    const el2 = document.createElement('div')
    const cleanup2 = await widget.render({ model: proxy(model, layout), el: el2 })
    expect(model.sent.at(-1)).toEqual({ type: 'logs_request', attempt: 2, from: 42 })
    cleanup1()
    cleanup2()
    cleanupModel()
    expect(model.listenerCount()).toBe(0)
  })

  it('clears its timers, frames and listeners in cleanup', () => {
    vi.useFakeTimers()
    model = fakeModel({ start_ms: Date.now() - 1000 })
    const frames = manualFrames()
    const store = attachStore(model)
    const before = model.listenerCount()
    const el = document.createElement('div')
    const cleanup = renderWidget({ model, el, env: { frames } })
    model.receive(...logsMsg(1, 0, lines(0, 10)))
    expect(vi.getTimerCount()).toBe(1) // the clock
    expect(frames.pending).toBe(1)
    cleanup()
    expect(vi.getTimerCount()).toBe(0)
    expect(frames.pending).toBe(0)
    expect(model.listenerCount()).toBe(before)
    expect(el.childNodes).toHaveLength(0)
    store.dispose()
    expect(model.listenerCount()).toBe(0)
  })

  it('renders without initialize() (an old host) and cleans up after itself', () => {
    const el = document.createElement('div')
    const cleanup = renderWidget({ model, el, env: { frames: manualFrames() } })
    model.receive(...logsMsg(2, 0, lines(0, 3)))
    expect(model.sent).toEqual([{ type: 'logs_request', attempt: 2, from: 0 }])
    cleanup()
    expect(model.listenerCount()).toBe(0)
  })
})
