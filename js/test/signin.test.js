import { afterEach, describe, expect, it } from 'vitest'
import widget from '../src/index.js'
import { fakeModel } from './helpers.js'

afterEach(() => document.body.replaceChildren())

function mount(model) {
  const el = document.createElement('div')
  document.body.append(el)
  const dispose = widget.initialize({ model })
  const cleanup = widget.render({ model, el })
  return { el, cleanup: () => { cleanup(); dispose?.() } }
}

const panel = (el) => el.querySelector('.frw-signin')

describe('sign-in panel', () => {
  it('shows the verification link and the user code while a device login waits', () => {
    const model = fakeModel({ sign_in: {} })
    const { el, cleanup } = mount(model)
    expect(panel(el).hidden).toBe(true)
    model.set('sign_in', { url: 'https://svc.example/device?user_code=ABCD-EFGH', code: 'ABCD-EFGH', endpoint: 'svc.example:443' })
    expect(panel(el).hidden).toBe(false)
    const link = el.querySelector('.frw-signin-link')
    expect(link.href).toBe('https://svc.example/device?user_code=ABCD-EFGH')
    expect(link.target).toBe('_blank')
    expect(link.rel).toBe('noopener noreferrer')
    expect(el.querySelector('.frw-signin-code').textContent).toBe('ABCD-EFGH')
    expect(panel(el).textContent).toContain('svc.example:443')
    model.set('sign_in', {})
    expect(panel(el).hidden).toBe(true)
    cleanup()
  })

  it('never makes a link of anything but http(s), and never HTML of text', () => {
    const model = fakeModel({ sign_in: { url: 'javascript:alert(1)', code: '<img src=x onerror=alert(1)>', endpoint: '<b>x</b>' } })
    const { el, cleanup } = mount(model)
    expect(panel(el).hidden).toBe(false)
    expect(el.querySelector('a[href]')?.getAttribute('href') ?? '').not.toContain('javascript')
    expect(el.querySelector('.frw-signin-url').textContent).toBe('javascript:alert(1)')
    expect(el.querySelector('.frw-signin-code').textContent).toBe('<img src=x onerror=alert(1)>')
    expect(el.querySelector('img')).toBeNull()
    expect(el.querySelector('b')).toBeNull()
    cleanup()
  })

  it('a SignInWidget renders only the panel, with no log store', () => {
    const model = fakeModel({ view: 'sign_in', sign_in: { url: 'https://svc.example/device', code: 'WXYZ', endpoint: 's' } })
    const { el, cleanup } = mount(model)
    expect(panel(el).hidden).toBe(false)
    expect(el.querySelector('.frw-header')).toBeNull()
    expect(el.querySelector('.frw-signin-code').textContent).toBe('WXYZ')
    model.set('sign_in', {})
    expect(panel(el).hidden).toBe(true)
    cleanup()
  })
})
