/**
 * The phase badge: one label and colour class per phase.
 *
 *     phaseInfo('running')      // { key: 'running', label: 'Running', active: true, ... }
 *     phaseInfo('unknown(42)')  // { key: 'unknown', label: 'unknown(42)', active: false, ... }
 */
import { h } from './dom.js'

const PHASES = {
  unspecified: ['Unspecified', false],
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

export const TERMINAL_PHASES = new Set(['succeeded', 'failed', 'aborted', 'timed_out', 'recovered'])

export function isTerminal(phase) {
  return TERMINAL_PHASES.has(phase)
}

export function phaseInfo(phase) {
  const known = Object.prototype.hasOwnProperty.call(PHASES, phase) ? PHASES[phase] : null
  const key = known ? phase : 'unknown'
  const label = known ? known[0] : String(phase || 'unknown')
  const active = known ? known[1] : false
  const className = `frw-badge frw-phase-${key}${active ? ' frw-active' : ''}`
  return { key, label, active, terminal: isTerminal(phase), className }
}

export function createBadge() {
  const label = h('span', { class: 'frw-badge-label' })
  const el = h('span', { role: 'status' }, h('span', { class: 'frw-dot', 'aria-hidden': 'true' }), label)
  return {
    el,
    update(phase) {
      const info = phaseInfo(phase)
      el.className = info.className
      el.dataset.phase = info.key
      label.textContent = info.label
    },
  }
}
