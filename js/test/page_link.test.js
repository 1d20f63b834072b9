import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import widget from '../src/index.js'
import { ANSWER_MS } from '../src/page_link.js'
import { renderWidget } from '../src/widget.js'
import { fakeModel } from './helpers.js'

const URL_ = 'https://flyte.example.com/runs/r-abc123'
const SIGNED = `${URL_}#token=s3cr%2Bt`
let cleanups = []
let tabs
beforeEach(() => {
  vi.useFakeTimers()
  tabs = []
  vi.spyOn(window, 'open').mockImplementation(() => {
    const tab = { opener: window, location: { href: 'about:blank' } }
    tabs.push(tab)
    return tab
  })
})
afterEach(() => {
  for (const c of cleanups) c()
  cleanups = []
  document.body.replaceChildren()
  vi.restoreAllMocks()
  vi.useRealTimers()
})

function notebookView(model) {
  const el = document.createElement('div')
  document.body.append(el)
  const init = widget.initialize({ model })
  const cleanup = widget.render({ model, el })
  cleanups.push(() => { cleanup(); init?.() })
  return el
}

// True when the link's own navigation would go ahead: no listener of the widget prevented it. The
// test's listener, after the widget's, then stops it (the test DOM would fetch the address).
function click(el, init = {}) {
  let prevented = null
  const after = (event) => {
    prevented = event.defaultPrevented
    event.preventDefault()
  }
  document.addEventListener('click', after)
  el.querySelector('.frw-name a').dispatchEvent(new MouseEvent('click', { bubbles: true, cancelable: true, button: 0, ...init }))
  document.removeEventListener('click', after)
  return !prevented
}
const asks = (model) => model.sent.filter((m) => m.type === 'page_url')

describe('the run name in a notebook', () => {
  it('opens a blank tab during the click and sends it to the kernel\'s signed address', () => {
    const model = fakeModel()
    const el = notebookView(model)
    expect(click(el)).toBe(false)
    // Opened synchronously, inside the click: what popup blockers allow.
    expect(window.open).toHaveBeenCalledTimes(1)
    expect(tabs[0].opener).toBe(null)
    expect(tabs[0].location.href).toBe('about:blank')
    const [ask] = asks(model)
    expect(ask).toEqual({ type: 'page_url', id: expect.any(String) })
    model.receive({ type: 'page_url', id: 'another-click', url: SIGNED })
    expect(tabs[0].location.href).toBe('about:blank')
    model.receive({ type: 'page_url', id: ask.id, url: SIGNED })
    expect(tabs[0].location.href).toBe(SIGNED)
    vi.advanceTimersByTime(ANSWER_MS * 2)
    expect(tabs[0].location.href).toBe(SIGNED)
  })

  it('takes the plain address when the kernel signs nothing or names another page', () => {
    for (const url of ['', 'https://evil.example/#token=x', `${URL_}/../other#token=x`]) {
      const model = fakeModel()
      const el = notebookView(model)
      click(el)
      const tab = tabs.at(-1)
      model.receive({ type: 'page_url', id: asks(model)[0].id, url })
      expect(tab.location.href).toBe(URL_)
    }
  })

  it('falls back to the plain address when the kernel does not answer', () => {
    const model = fakeModel()
    const el = notebookView(model)
    const before = model.listenerCount()
    click(el)
    expect(model.listenerCount()).toBe(before + 1)
    vi.advanceTimersByTime(ANSWER_MS - 1)
    expect(tabs[0].location.href).toBe('about:blank')
    vi.advanceTimersByTime(1)
    expect(tabs[0].location.href).toBe(URL_)
    expect(model.listenerCount()).toBe(before)
    // A late answer changes nothing.
    model.receive({ type: 'page_url', id: asks(model)[0].id, url: SIGNED })
    expect(tabs[0].location.href).toBe(URL_)
  })

  it('leaves modified and middle clicks to the browser, as a plain link', () => {
    const model = fakeModel()
    const el = notebookView(model)
    for (const init of [{ ctrlKey: true }, { metaKey: true }, { shiftKey: true }, { altKey: true }, { button: 1 }]) {
      expect(click(el, init)).toBe(true)
    }
    expect(window.open).not.toHaveBeenCalled()
    expect(asks(model)).toEqual([])
    expect(el.querySelector('.frw-name a').getAttribute('href')).toBe(URL_)
  })

  it('lets the link open plainly in the text transport and when the tab is blocked', () => {
    const text = fakeModel({ transport: 'text' })
    expect(click(notebookView(text))).toBe(true)
    expect(window.open).not.toHaveBeenCalled()
    window.open.mockImplementation(() => null)
    const blocked = fakeModel()
    expect(click(notebookView(blocked))).toBe(true)
    expect(asks(text).concat(asks(blocked))).toEqual([])
  })
})

describe('the run name on the run page', () => {
  it('stays a plain link: no kernel to ask', () => {
    const model = fakeModel()
    const el = document.createElement('div')
    document.body.append(el)
    cleanups.push(renderWidget({ model, el }))
    expect(click(el)).toBe(true)
    expect(window.open).not.toHaveBeenCalled()
    expect(asks(model)).toEqual([])
  })
})
