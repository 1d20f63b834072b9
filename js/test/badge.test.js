import { describe, expect, it } from 'vitest'
import { createBadge, isTerminal, phaseInfo } from '../src/badge.js'

const EXPECTED = {
  queued: ['Queued', true],
  waiting_for_resources: ['Waiting for resources', true],
  initializing: ['Initializing', true],
  running: ['Running', true],
  succeeded: ['Succeeded', false],
  failed: ['Failed', false],
  aborted: ['Aborted', false],
  timed_out: ['Timed out', false],
  paused: ['Paused', false],
  recovered: ['Recovered', false],
}

describe('phase badge', () => {
  it.each(Object.entries(EXPECTED))('%s has its own label, class and animation', (phase, [label, active]) => {
    const info = phaseInfo(phase)
    expect(info.label).toBe(label)
    expect(info.key).toBe(phase)
    expect(info.active).toBe(active)
    expect(info.className.split(' ')).toContain(`frw-phase-${phase}`)
    expect(info.className.includes('frw-active')).toBe(active)
  })

  it('gives every known phase a distinct class', () => {
    const classes = Object.keys(EXPECTED).map((p) => phaseInfo(p).className.split(' ')[1])
    expect(new Set(classes).size).toBe(classes.length)
  })

  it('shows an unknown phase number as its label, neutral and not animated', () => {
    const info = phaseInfo('unknown(42)')
    expect(info.label).toBe('unknown(42)')
    expect(info.key).toBe('unknown')
    expect(info.className).toBe('frw-badge frw-phase-unknown')
    expect(info.terminal).toBe(false)
  })

  it('never turns the phase string into a class name', () => {
    expect(phaseInfo('x" onload="y').className).toBe('frw-badge frw-phase-unknown')
    expect(phaseInfo('__proto__').className).toBe('frw-badge frw-phase-unknown')
    expect(phaseInfo('').label).toBe('unknown')
  })

  it('knows the terminal phases', () => {
    for (const p of ['succeeded', 'failed', 'aborted', 'timed_out', 'recovered']) expect(isTerminal(p)).toBe(true)
    for (const p of ['queued', 'running', 'paused', 'unknown(42)', '']) expect(isTerminal(p)).toBe(false)
  })

  it('renders into an element', () => {
    const badge = createBadge()
    badge.update('running')
    expect(badge.el.textContent).toBe('Running')
    expect(badge.el.classList.contains('frw-phase-running')).toBe(true)
    expect(badge.el.querySelector('.frw-dot')).not.toBeNull()
    badge.update('unknown(42)')
    expect(badge.el.textContent).toBe('unknown(42)')
    expect(badge.el.dataset.phase).toBe('unknown')
  })
})
