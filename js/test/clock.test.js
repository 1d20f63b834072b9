import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createClock, elapsedMs, formatElapsed } from '../src/clock.js'
import { attachStore } from '../src/store.js'
import { fakeModel } from './helpers.js'

describe('formatElapsed', () => {
  it.each([
    [0, '0.0s'],
    [-5, '0.0s'],
    [NaN, '0.0s'],
    [4200, '4.2s'],
    [4299, '4.2s'],
    [59999, '59.9s'],
    [60000, '1m 00s'],
    [65000, '1m 05s'],
    [3599999, '59m 59s'],
    [3600000, '1h 00m'],
    [7380000, '2h 03m'],
    [100 * 3600000, '100h 00m'],
  ])('%s ms -> %s', (ms, text) => {
    expect(formatElapsed(ms)).toBe(text)
  })
})

describe('elapsedMs', () => {
  it('is null before the start', () => expect(elapsedMs(0, 0, 1000)).toBeNull())
  it('runs to the kernel clock while running', () => expect(elapsedMs(1000, 0, 5200)).toBe(4200))
  it('stops at the end', () => expect(elapsedMs(1000, 3000, 99999)).toBe(2000))
  it('never goes negative', () => expect(elapsedMs(5000, 0, 1000)).toBe(0))
})

describe('clock skew', () => {
  beforeEach(() => {
    vi.useFakeTimers()
    vi.setSystemTime(new Date('2025-01-01T00:00:00Z'))
  })
  afterEach(() => vi.useRealTimers())

  it('corrects a browser clock that is behind the kernel', () => {
    const browserNow = Date.now()
    const kernelNow = browserNow + 3600000 // kernel is one hour ahead
    const model = fakeModel()
    const store = attachStore(model)
    model.set('now_ms', kernelNow)
    expect(store.kernelNow()).toBe(kernelNow)
    const clock = createClock({ times: () => ({ start: kernelNow - 65000, end: 0 }), kernelNow: () => store.kernelNow() })
    clock.update()
    expect(clock.el.textContent).toBe('1m 05s')
    vi.advanceTimersByTime(1000)
    expect(clock.el.textContent).toBe('1m 06s')
    clock.stop()
    store.dispose()
  })

  it('corrects a browser clock that is ahead of the kernel', () => {
    const model = fakeModel()
    const store = attachStore(model)
    model.set('now_ms', Date.now() - 30000)
    const clock = createClock({ times: () => ({ start: Date.now() - 30000 - 4200, end: 0 }), kernelNow: () => store.kernelNow() })
    clock.update()
    expect(clock.el.textContent).toBe('4.2s')
    clock.stop()
    store.dispose()
  })

  it('does not trust a stale now_ms that was synced before the page existed', () => {
    // now_ms from an hour ago (the kernel has not pushed since): not a skew of -1h
    const model = fakeModel({ now_ms: Date.now() - 3600000 })
    const store = attachStore(model)
    expect(store.kernelNow()).toBe(Date.now())
    store.dispose()
  })

  it('ticks once a second only while running, and stops', () => {
    let end = 0
    const start = Date.now() - 1000
    const clock = createClock({ times: () => ({ start, end }), kernelNow: () => Date.now() })
    clock.update()
    expect(vi.getTimerCount()).toBe(1)
    expect(clock.el.textContent).toBe('1.0s')
    vi.advanceTimersByTime(3000)
    expect(clock.el.textContent).toBe('4.0s')
    end = start + 4200
    clock.update()
    expect(clock.el.textContent).toBe('4.2s')
    expect(vi.getTimerCount()).toBe(0)
    const notStarted = createClock({ times: () => ({ start: 0, end: 0 }), kernelNow: () => Date.now() })
    notStarted.update()
    expect(notStarted.el.textContent).toBe('not started')
    expect(vi.getTimerCount()).toBe(0)
  })
})
