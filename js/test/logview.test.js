import { afterEach, describe, expect, it, vi } from 'vitest'
import { DEFAULT_HEIGHT, LogView, OVERSCAN, RENDER_INTERVAL_MS, ROW_HEIGHT } from '../src/logview.js'
import { attachStore } from '../src/store.js'
import { fakeModel, lines, logsMsg, manualFrames } from './helpers.js'

const views = []
function setup(overrides = {}, frames = manualFrames()) {
  const model = fakeModel(overrides)
  const store = attachStore(model)
  const view = new LogView({ store, send: (m) => model.send(m), name: () => model.get('run_name'), env: frames })
  document.body.append(view.el)
  views.push(() => {
    view.destroy()
    store.dispose()
  })
  return { model, store, frames, view }
}
afterEach(() => {
  while (views.length) views.pop()()
})

const rowTexts = (view) => [...view.el.querySelectorAll('.frw-row')].map((r) => r.textContent)
const maxRows = Math.ceil(DEFAULT_HEIGHT / ROW_HEIGHT) + 2 * OVERSCAN + 1

function scrollTo(view, top) {
  view.viewport.scrollTop = top
  view.viewport.dispatchEvent(new Event('scroll'))
}

describe('log view', () => {
  it('asks the kernel for the attempt it shows when it is rendered', () => {
    const { model } = setup()
    expect(model.sent).toEqual([{ type: 'logs_request', attempt: 1, from: 0 }])
  })

  it('renders lines in an animation frame, batching many messages into one', () => {
    const { model, frames, view } = setup()
    model.receive(...logsMsg(1, 0, lines(0, 3)))
    model.receive(...logsMsg(1, 3, lines(3, 3)))
    expect(frames.pending).toBe(1)
    expect(rowTexts(view)).toEqual([])
    frames.run()
    expect(rowTexts(view)).toEqual(['line 0', 'line 1', 'line 2', 'line 3', 'line 4', 'line 5'])
    expect(view.countEl.textContent).toBe('6 lines')
  })

  it('keeps the DOM small with 100,000 lines (virtualised)', () => {
    const { model, frames, view } = setup()
    for (let i = 0; i < 100000; i += 5000) model.receive(...logsMsg(1, i, lines(i, 5000)))
    frames.run()
    const rows = view.el.querySelectorAll('.frw-row')
    expect(rows.length).toBeGreaterThan(10)
    expect(rows.length).toBeLessThanOrEqual(maxRows)
    expect(view.spacer.style.height).toBe(`${100000 * ROW_HEIGHT}px`)
    expect(rowTexts(view).at(-1)).toBe('line 99999') // following the tail
    expect(view.el.querySelectorAll('*').length).toBeLessThan(120)
    scrollTo(view, 50000 * ROW_HEIGHT)
    frames.run()
    expect(view.el.querySelectorAll('.frw-row').length).toBeLessThanOrEqual(maxRows)
    expect(rowTexts(view)).toContain('line 50000')
  })

  it('scales the scroll height past what browsers allow', () => {
    const { model, frames, view } = setup({ max_lines: 1000000 })
    for (let i = 0; i < 1000000; i += 50000) model.receive(...logsMsg(1, i, lines(i, 50000)))
    frames.run()
    expect(parseInt(view.spacer.style.height, 10)).toBeLessThanOrEqual(4000000)
    expect(rowTexts(view).at(-1)).toBe('line 999999')
    scrollTo(view, 0)
    frames.run()
    expect(rowTexts(view)[0]).toBe('line 0')
    scrollTo(view, (4000000 - DEFAULT_HEIGHT) / 2)
    frames.run()
    const middle = rowTexts(view).map((t) => Number(t.split(' ')[1]))
    expect(Math.min(...middle)).toBeLessThan(500000)
    expect(Math.max(...middle)).toBeGreaterThan(499000)
  }, 30000) // a million lines built, encoded and decoded: seconds on a loaded machine

  it('follows the tail until the user scrolls up, then offers a way back', () => {
    const { model, frames, view } = setup()
    model.receive(...logsMsg(1, 0, lines(0, 1000)))
    frames.run()
    expect(view.following).toBe(true)
    expect(view.followBtn.hidden).toBe(true)
    expect(view.viewport.scrollTop).toBe(1000 * ROW_HEIGHT - DEFAULT_HEIGHT)

    scrollTo(view, 100 * ROW_HEIGHT)
    frames.run()
    expect(view.following).toBe(false)
    expect(view.followBtn.hidden).toBe(false)
    model.receive(...logsMsg(1, 1000, lines(1000, 500)))
    frames.run()
    expect(view.viewport.scrollTop).toBe(100 * ROW_HEIGHT) // stays where the user is
    expect(rowTexts(view)).toContain('line 100')
    expect(rowTexts(view)).not.toContain('line 1499')

    view.followBtn.click()
    expect(view.following).toBe(true)
    expect(view.followBtn.hidden).toBe(true)
    expect(rowTexts(view).at(-1)).toBe('line 1499')
    model.receive(...logsMsg(1, 1500, lines(1500, 10)))
    frames.run()
    expect(rowTexts(view).at(-1)).toBe('line 1509')
  })

  it('follows again when the user scrolls back to the bottom', () => {
    const { model, frames, view } = setup()
    model.receive(...logsMsg(1, 0, lines(0, 1000)))
    frames.run()
    scrollTo(view, 0)
    expect(view.following).toBe(false)
    scrollTo(view, 1000 * ROW_HEIGHT - DEFAULT_HEIGHT)
    expect(view.following).toBe(true)
  })

  it('keeps the rows being read in place while old lines are evicted', () => {
    const { model, frames, view } = setup({ max_lines: 1000 })
    model.receive(...logsMsg(1, 0, lines(0, 1000)))
    frames.run()
    scrollTo(view, 500 * ROW_HEIGHT)
    frames.run()
    expect(rowTexts(view)).toContain('line 500')
    model.receive(...logsMsg(1, 1000, lines(1000, 100))) // evicts lines 0..99
    frames.run()
    expect(view.viewport.scrollTop).toBe(400 * ROW_HEIGHT)
    expect(rowTexts(view)).toContain('line 500')
  })

  it('says how many lines are held and how many older ones were dropped', () => {
    const { model, frames, view } = setup()
    model.receive(...logsMsg(1, 0, lines(0, 60000)))
    model.receive(...logsMsg(1, 60000, lines(60000, 63456)))
    frames.run()
    expect(view.countEl.textContent).toBe('100,000 lines · 23,456 older dropped')
    model.receive(...logsMsg(1, 123456, [], true))
    frames.run()
    expect(view.countEl.textContent).toBe('100,000 lines · 23,456 older dropped · complete')
  })

  it('counts lines the kernel dropped (a gap in first) as dropped and never shows a line twice', () => {
    const { model, frames, view } = setup()
    model.receive(...logsMsg(1, 0, lines(0, 5)))
    model.receive(...logsMsg(1, 0, lines(0, 8))) // replay overlapping what is held
    model.receive(...logsMsg(1, 20, lines(20, 2))) // 8..19 never arrived
    frames.run()
    expect(rowTexts(view)).toEqual(['line 0', 'line 1', 'line 2', 'line 3', 'line 4', 'line 5', 'line 6', 'line 7', 'line 20', 'line 21'])
    expect(view.countEl.textContent).toBe('10 lines · 12 older dropped')
  })

  it('filters case-insensitively over the whole held buffer, ignoring ANSI codes', () => {
    const { model, frames, view } = setup()
    const make = (i) => (i % 1000 === 0 ? `step ${i}: \x1b[31mERR\x1b[0mOR here` : `ok ${i}`)
    model.receive(...logsMsg(1, 0, lines(0, 50000, make)))
    frames.run()
    view.filterInput.value = 'error'
    view.filterInput.dispatchEvent(new Event('input'))
    for (let i = 0; i < 100 && !view.index.complete; i++) frames.run()
    expect(view.index.complete).toBe(true)
    expect(view.index.length).toBe(50)
    expect(rowTexts(view)).toHaveLength(26) // virtualised: visible rows + overscan
    expect(rowTexts(view).at(-1)).toBe('step 49000: ERROR here')
    scrollTo(view, 0)
    frames.run()
    expect(rowTexts(view)[0]).toBe('step 0: ERROR here')
    expect(view.countEl.textContent).toBe('50 of 50,000 lines')
    view.follow()
    model.receive(...logsMsg(1, 50000, lines(50000, 1001, make)))
    frames.run()
    expect(rowTexts(view).at(-1)).toBe('step 51000: ERROR here')
    view.filterInput.value = 'nothing like this'
    view.filterInput.dispatchEvent(new Event('input'))
    for (let i = 0; i < 100 && !view.index.complete; i++) frames.run()
    expect(rowTexts(view)).toHaveLength(0)
    expect(view.emptyEl.textContent).toBe('No lines match.')
    view.filterInput.value = ''
    view.filterInput.dispatchEvent(new Event('input'))
    frames.run()
    expect(view.countEl.textContent).toBe('51,001 lines')
  })

  it('filters in time slices so no frame blocks for long', () => {
    const { model, frames, view } = setup()
    let clock = 0
    view.env.now = () => clock++ // every call costs 1 "ms": forces the budget to run out
    model.receive(...logsMsg(1, 0, lines(0, 20000)))
    view.setFilter('line 1')
    frames.run()
    expect(view.index.complete).toBe(false)
    expect(view.countEl.textContent).toContain('filtering…')
    while (!view.index.complete) frames.run()
    expect(view.index.length).toBe(11111)
  })

  it('hides system lines and shows timestamps when asked', () => {
    const { model, frames, view } = setup()
    model.receive(...logsMsg(1, 0, [[Date.UTC(2025, 0, 1, 12, 0, 0, 5), 1, 'user'], [0, 2, 'system'], [0, 0, 'other']]))
    frames.run()
    expect(rowTexts(view)).toEqual(['user', 'system', 'other'])
    expect(view.el.querySelectorAll('.frw-sys')).toHaveLength(1)
    view.sysToggle.checked = false
    view.sysToggle.dispatchEvent(new Event('change'))
    frames.run()
    expect(rowTexts(view)).toEqual(['user', 'other'])
    view.tsToggle.checked = true
    view.tsToggle.dispatchEvent(new Event('change'))
    frames.run()
    const ts = view.el.querySelector('.frw-ts').textContent
    expect(ts).toMatch(/^\d\d:\d\d:\d\d\.005$/)
  })

  it('offers an attempt selector when there are several attempts', () => {
    const { model, frames, view } = setup({ log_attempts: [] })
    expect(model.sent).toEqual([]) // nothing to ask for yet
    model.set('log_attempts', [1])
    model.receive(...logsMsg(1, 0, lines(0, 3, (i) => `first ${i}`)))
    frames.run()
    expect(view.attemptSelect.hidden).toBe(true)
    expect(rowTexts(view)).toEqual(['first 0', 'first 1', 'first 2'])
    model.set('log_attempts', [1, 2])
    model.receive(...logsMsg(2, 0, lines(0, 2, (i) => `second ${i}`)))
    frames.run()
    expect(view.attemptSelect.hidden).toBe(false)
    expect([...view.attemptSelect.options].map((o) => o.textContent)).toEqual(['Attempt 1', 'Attempt 2'])
    expect(rowTexts(view)).toEqual(['second 0', 'second 1']) // the latest by default
    view.attemptSelect.value = '1'
    view.attemptSelect.dispatchEvent(new Event('change'))
    frames.run()
    expect(rowTexts(view)).toEqual(['first 0', 'first 1', 'first 2'])
    expect(model.sent.at(-1)).toEqual({ type: 'logs_request', attempt: 1, from: 3 })
    model.set('log_attempts', [1, 2, 3]) // pinned: a new attempt does not steal the view
    frames.run()
    expect(rowTexts(view)).toEqual(['first 0', 'first 1', 'first 2'])
  })

  it('truncates a huge line with a marker and caps styled spans (ANSI bomb)', () => {
    const { model, frames, view } = setup()
    const bomb = '\x1b[31mx\x1b[32my'.repeat(200000)
    model.receive(...logsMsg(1, 0, [[0, 1, bomb], [0, 1, 'z'.repeat(50000)]]))
    frames.run()
    const rows = view.el.querySelectorAll('.frw-row')
    expect(rows[0].querySelectorAll('span').length).toBeLessThanOrEqual(502)
    expect(rows[0].querySelector('.frw-cut').textContent).toMatch(/more characters not shown/)
    expect(rows[1].textContent.length).toBeLessThan(10100)
    expect(rows[1].querySelector('.frw-cut').textContent).toBe(' … 40,000 more characters not shown')
  })

  it('copies and downloads the lines shown, ANSI stripped', async () => {
    const { model, frames, view } = setup()
    model.receive(...logsMsg(1, 0, [[0, 1, '\x1b[1mbold\x1b[0m line'], [0, 2, 'sys']]))
    frames.run()
    const writeText = vi.fn(() => Promise.resolve())
    vi.stubGlobal('navigator', { clipboard: { writeText } })
    await view.copy()
    expect(writeText).toHaveBeenCalledWith('bold line\nsys\n')
    expect(view.copyBtn.textContent).toBe('Copied 2')
    vi.unstubAllGlobals()

    const blobs = []
    vi.spyOn(URL, 'createObjectURL').mockImplementation((b) => {
      blobs.push(b)
      return 'blob:x'
    })
    const revoke = vi.spyOn(URL, 'revokeObjectURL').mockImplementation(() => {})
    view.download()
    expect(await blobs[0].text()).toBe('bold line\nsys\n')
    view.destroy()
    expect(revoke).toHaveBeenCalledWith('blob:x')
  })

  it('falls back gracefully when the clipboard API is missing', async () => {
    const { view } = setup()
    vi.stubGlobal('navigator', {})
    document.execCommand = vi.fn(() => false)
    await view.copy()
    expect(view.copyBtn.textContent).toBe('Copy blocked: use Download')
    vi.unstubAllGlobals()
  })

  it('waits while its viewport is hidden and renders when it is shown again', () => {
    let notify = null
    const disconnect = vi.fn()
    vi.stubGlobal('ResizeObserver', class {
      constructor(fn) {
        notify = (width, height) => fn([{ contentRect: { width, height } }])
      }
      observe() {}
      disconnect() {
        disconnect()
      }
    })
    const { model, frames, view } = setup()
    model.receive(...logsMsg(1, 0, lines(0, 10)))
    frames.run()
    notify(0, 0) // display:none
    model.receive(...logsMsg(1, 10, lines(10, 1000)))
    frames.run()
    expect(rowTexts(view)).not.toContain('line 1009')
    expect(view.countEl.textContent).toBe('1,010 lines')
    notify(800, 320)
    expect(frames.pending).toBe(1)
    frames.run()
    expect(rowTexts(view).at(-1)).toBe('line 1009')
    view.destroy()
    expect(disconnect).toHaveBeenCalled()
    vi.unstubAllGlobals()
  })

  it('redraws streaming lines at most every RENDER_INTERVAL_MS, what the user does at once', () => {
    const { model, frames, view } = setup({}, manualFrames({ step: 16 }))
    model.receive(...logsMsg(1, 0, lines(0, 5)))
    frames.run()
    expect(rowTexts(view).at(-1)).toBe('line 4')
    model.receive(...logsMsg(1, 5, lines(5, 5)))
    frames.run() // 16 ms after the last redraw: the new lines wait, a frame stays booked
    expect(rowTexts(view).at(-1)).toBe('line 4')
    expect(frames.pending).toBe(1)
    frames.advance(RENDER_INTERVAL_MS)
    frames.run()
    expect(rowTexts(view).at(-1)).toBe('line 9')
    expect(frames.pending).toBe(0)
    model.receive(...logsMsg(1, 10, lines(10, 5)))
    view.setShowTimestamps(true) // a user action: drawn in the next frame, with the new lines
    frames.run()
    expect(rowTexts(view).at(-1)).toMatch(/line 14$/)
    model.receive(...logsMsg(1, 15, lines(15, 1)))
    view.follow() // the Follow button draws synchronously
    expect(rowTexts(view).at(-1)).toMatch(/line 15$/)
  })

  it('sizes its rows by the height ResizeObserver reports', () => {
    let notify = null
    vi.stubGlobal('ResizeObserver', class {
      constructor(fn) {
        notify = (width, height) => fn([{ contentRect: { width, height } }])
      }
      observe() {}
      disconnect() {}
    })
    const { model, frames, view } = setup()
    model.receive(...logsMsg(1, 0, lines(0, 1000)))
    frames.run()
    const before = view.el.querySelectorAll('.frw-row').length
    expect(before).toBeLessThanOrEqual(maxRows)
    notify(800, 2 * DEFAULT_HEIGHT) // the user made it taller: twice as many rows are visible
    frames.run()
    const after = view.el.querySelectorAll('.frw-row').length
    expect(after - before).toBeGreaterThanOrEqual(Math.floor(DEFAULT_HEIGHT / ROW_HEIGHT))
    expect(after).toBeLessThanOrEqual(Math.ceil((2 * DEFAULT_HEIGHT) / ROW_HEIGHT) + 2 * OVERSCAN + 1)
    expect(rowTexts(view).at(-1)).toBe('line 999')
    vi.unstubAllGlobals()
  })

  it('keeps the count text node while the count does not change', () => {
    const { model, frames, view } = setup()
    model.receive(...logsMsg(1, 0, lines(0, 3)))
    frames.run()
    const node = view.countEl.firstChild
    view.invalidate()
    frames.run()
    expect(view.countEl.firstChild).toBe(node)
    model.receive(...logsMsg(1, 3, lines(3, 1)))
    frames.run()
    expect(view.countEl.textContent).toBe('4 lines')
  })

  it('cancels its frame and timers and unsubscribes on destroy', () => {
    const { model, store, frames, view } = setup()
    model.receive(...logsMsg(1, 0, lines(0, 3)))
    expect(frames.pending).toBe(1)
    view.destroy()
    expect(frames.pending).toBe(0)
    expect(store.listeners.size).toBe(0)
    model.receive(...logsMsg(1, 3, lines(3, 3)))
    expect(frames.pending).toBe(0)
    expect(view.el.isConnected).toBe(false)
  })
})
