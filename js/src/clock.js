/**
 * Elapsed time, ticking in the browser with no kernel traffic.
 *
 *     formatElapsed(4200)     // '4.2s'
 *     formatElapsed(65000)    // '1m 05s'
 *     formatElapsed(7380000)  // '2h 03m'
 *
 * The kernel's clock is estimated as the browser's plus a skew (see LogStore.skew), so a
 * browser whose clock is off still shows the right duration.
 */
import { h } from './dom.js'

const pad = (n) => String(n).padStart(2, '0')

export function formatElapsed(ms) {
  if (!(ms > 0)) ms = 0
  if (ms < 60000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`
  const s = Math.floor(ms / 1000)
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`
  const m = Math.floor(s / 60)
  return `${Math.floor(m / 60)}h ${pad(m % 60)}m`
}

/** Milliseconds since start (until end, if ended); null when not started. */
export function elapsedMs(startMs, endMs, kernelNowMs) {
  if (!(startMs > 0)) return null
  const until = endMs > 0 ? endMs : kernelNowMs
  return Math.max(0, until - startMs)
}

/**
 * A ticking elapsed-time element. `times()` returns {start, end}; `kernelNow()` the estimated
 * kernel clock. Call update() when the times change and stop() in cleanup.
 */
export function createClock({ times, kernelNow, timers = globalThis }) {
  const el = h('span', { class: 'frw-elapsed' })
  let interval = null
  const paint = () => {
    const { start, end } = times()
    const ms = elapsedMs(start, end, kernelNow())
    el.textContent = ms === null ? 'not started' : formatElapsed(ms)
    el.title = ms === null ? '' : `started ${new Date(start).toLocaleString()}` +
      (end > 0 ? `, ended ${new Date(end).toLocaleString()}` : '')
  }
  const stopTicking = () => {
    if (interval !== null) timers.clearInterval(interval)
    interval = null
  }
  return {
    el,
    update() {
      paint()
      const { start, end } = times()
      const ticking = start > 0 && !(end > 0)
      if (ticking && interval === null) interval = timers.setInterval(paint, 1000)
      if (!ticking) stopTicking()
    },
    stop: stopTicking,
  }
}
