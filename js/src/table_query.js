/**
 * What a runs table view shows: the rows that pass its filter, in its order, and which of them
 * are on screen.
 *
 *     const shown = queryRows(rows, { text: 'train', phase: 'running', key: 'start', desc: true })
 *     const { first, last } = visibleRange(scrollTop, height, ROW_HEIGHT, shown.length)
 */
import { formatElapsed } from './clock.js'

export const COLUMNS = [
  { key: 'name', label: 'Name' },
  { key: 'task', label: 'Task' },
  { key: 'phase', label: 'Phase' },
  { key: 'start', label: 'Started' },
  { key: 'duration', label: 'Duration' },
  { key: 'user', label: 'Created by' },
]

/** A row's duration in ms at kernel time `now` (0 when it has not started). */
export function durationOf(row, now) {
  if (!(row.start > 0)) return 0
  return Math.max(0, (row.end > 0 ? row.end : now) - row.start)
}

function compareBy(key, now) {
  if (key === 'start') return (a, b) => a.start - b.start
  if (key === 'duration') return (a, b) => durationOf(a, now) - durationOf(b, now)
  return (a, b) => (a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : 0)
}

/**
 * The rows that contain `text` (any case) in name, task or creator and are in `phase` (all when
 * empty), sorted by `key` (`desc` for descending); ties keep the newest first.
 */
export function queryRows(rows, { text = '', phase = '', key = 'start', desc = true, now = Date.now() } = {}) {
  const needle = text.trim().toLowerCase()
  const out = []
  for (const row of rows) {
    if (phase && row.phase !== phase) continue
    if (needle && !(row.name.toLowerCase().includes(needle) || row.task.toLowerCase().includes(needle) ||
      row.user.toLowerCase().includes(needle))) continue
    out.push(row)
  }
  const cmp = compareBy(key, now)
  const sign = desc ? -1 : 1
  out.sort((a, b) => sign * cmp(a, b) || b.start - a.start || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  return out
}

/** Rows [first, last) to draw for a viewport, with `overscan` rows beyond each edge. */
export function visibleRange(scrollTop, height, rowHeight, count, overscan = 5) {
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan)
  const last = Math.min(count, Math.ceil((scrollTop + height) / rowHeight) + overscan)
  return { first, last: Math.max(first, last) }
}

const pad = (n) => String(n).padStart(2, '0')

/** A start time: the clock time today, else the date too. */
export function formatStart(ms, now = Date.now()) {
  if (!(ms > 0)) return ''
  const d = new Date(ms)
  const today = new Date(now)
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  if (d.toDateString() === today.toDateString()) return time
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`
}

export function formatDuration(row, now) {
  return row.start > 0 ? formatElapsed(durationOf(row, now)) : ''
}
