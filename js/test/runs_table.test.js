// The runs table's view (src/table_view.js) over its row store (src/run_rows.js): the kernel's
// bytes decode into rows, sorting and filtering, only the visible rows in the DOM at 10,000
// runs, hostile names as text, a click opens a run, selected runs abort after one confirm.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { attachRowStore, decodeRows } from '../src/run_rows.js'
import { DEFAULT_HEIGHT, ROW_HEIGHT, TableView } from '../src/table_view.js'
import { visibleRange } from '../src/table_query.js'
import { fakeModel, manualFrames } from './helpers.js'

const fixture = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'tests', 'fixtures', 'run_rows.json'), 'utf8'))
const fromHex = (hex) => {
  const bytes = new Uint8Array(hex.length / 2)
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16)
  return new DataView(bytes.buffer)
}

/** What the kernel sends (notebook/run_rows.py encode_rows), for rows given as objects. */
function rowsMsg(rows, { reset = false, drop = [] } = {}) {
  const dicts = { phases: [], tasks: [], users: [] }
  const index = (list, v) => (list.includes(v) ? list.indexOf(v) : list.push(v) - 1)
  const meta = new Uint32Array(rows.length * 3)
  const times = new Float64Array(rows.length * 2)
  rows.forEach((r, i) => {
    meta.set([index(dicts.phases, r.phase), index(dicts.tasks, r.task), index(dicts.users, r.user)], i * 3)
    times.set([r.start, r.end], i * 2)
  })
  return [{ type: 'rows', reset, names: rows.map((r) => r.name), ...dicts, drop },
    [new DataView(meta.buffer), new DataView(times.buffer)]]
}

const T0 = 1700000000000
const row = (i, over = {}) => ({ name: `r${String(i).padStart(5, '0')}`, task: i % 2 ? 'train' : 'eval',
  user: i % 3 ? 'ada' : 'bob', phase: 'running', start: T0 + i * 1000, end: 0, ...over })

const cleanups = []
afterEach(() => {
  while (cleanups.length) cleanups.pop()()
})

function setup(rows = []) {
  const model = fakeModel({ title: 'Runs', total: 0, opened: '', busy: '', notice: '', now_ms: 0 })
  const store = attachRowStore(model)
  const frames = manualFrames()
  const intervals = []
  const view = new TableView({ model, store, env: { ...frames, setInterval: (fn) => intervals.push(fn), clearInterval() {} } })
  document.body.append(view.el)
  cleanups.push(() => {
    view.destroy()
    store.dispose()
  })
  if (rows.length) model.receive(...rowsMsg(rows))
  frames.run()
  return { model, store, view, frames }
}

const names = (view) => [...view.el.querySelectorAll('.frwt-row')].map((r) => r.querySelector('.frwt-name').textContent)
const click = (el) => el.dispatchEvent(new MouseEvent('click', { bubbles: true }))

describe('rows from the kernel', () => {
  it('decodes the golden message the kernel encoder produced', () => {
    const rows = decodeRows(fixture.message, fixture.buffers_hex.map(fromHex))
    expect(rows).toEqual(fixture.rows)
  })

  it('refuses buffers that do not fit the names', () => {
    const [msg, buffers] = rowsMsg([row(1), row(2)])
    expect(decodeRows({ ...msg, names: ['only one'] }, buffers)).toBeNull()
    expect(decodeRows(msg, [buffers[0]])).toBeNull()
  })

  it('asks the kernel for every row when its store starts, then applies changes, drops and resets', () => {
    const { model, store, view, frames } = setup()
    expect(model.sent).toEqual([{ type: 'sync' }])
    expect(view.empty.textContent).toBe('Loading runs…')
    model.receive(...rowsMsg([]))
    frames.run()
    expect(view.empty.textContent).toBe('No runs')
    model.receive(...rowsMsg([row(1), row(2)]))
    model.receive(...rowsMsg([row(2, { phase: 'succeeded', end: T0 + 9000 })], { drop: ['r00001'] }))
    expect([...store.rows.keys()]).toEqual(['r00002'])
    expect(store.rows.get('r00002').phase).toBe('succeeded')
    model.receive(...rowsMsg([row(3)], { reset: true }))
    expect([...store.rows.keys()]).toEqual(['r00003'])
  })
})

describe('sorting and filtering', () => {
  it('shows the newest first, and sorts by a column, toggling direction', () => {
    const { view, frames } = setup([row(1), row(3, { name: 'a-last' }), row(2)])
    expect(names(view)).toEqual(['a-last', 'r00002', 'r00001'])
    const byName = view.el.querySelector('.frwt-sort[data-key="name"]')
    click(byName)
    frames.run()
    expect(names(view)).toEqual(['a-last', 'r00001', 'r00002'])
    expect(byName.getAttribute('aria-sort')).toBe('ascending')
    click(byName)
    frames.run()
    expect(names(view)).toEqual(['r00002', 'r00001', 'a-last'])
  })

  it('sorts by duration, running ones counted to now', () => {
    const { view, frames } = setup([
      row(1, { phase: 'succeeded', end: T0 + 1000 + 5000 }),
      row(2, { phase: 'succeeded', end: T0 + 2000 + 60000 }),
      row(3, { phase: 'failed', end: T0 + 3000 + 100 }),
    ])
    click(view.el.querySelector('.frwt-sort[data-key="duration"]'))
    frames.run()
    expect(names(view)).toEqual(['r00002', 'r00001', 'r00003'])
  })

  it('filters by text in name, task or creator, and by phase, and counts what it shows', () => {
    const rows = [row(1), row(2), row(3, { phase: 'failed' }), row(4, { user: 'Grace' })]
    const { view, frames } = setup(rows)
    view.filter.value = 'TRAIN'
    view.filter.dispatchEvent(new Event('input'))
    frames.run()
    expect(names(view)).toEqual(['r00003', 'r00001'])
    view.filter.value = 'grace'
    view.filter.dispatchEvent(new Event('input'))
    frames.run()
    expect(names(view)).toEqual(['r00004'])
    view.filter.value = ''
    view.filter.dispatchEvent(new Event('input'))
    view.phaseSelect.value = 'failed'
    view.phaseSelect.dispatchEvent(new Event('change'))
    frames.run()
    expect(names(view)).toEqual(['r00003'])
    expect(view.count.textContent).toBe('1 of 4 runs')
  })
})

describe('virtualisation', () => {
  it('keeps only the visible rows of 10,000 in the DOM, and scrolls to any of them', () => {
    const rows = Array.from({ length: 10000 }, (_, i) => row(i))
    const { view, frames, model } = setup(rows)
    const mid = visibleRange(5000 * ROW_HEIGHT, DEFAULT_HEIGHT, ROW_HEIGHT, 10000)
    const most = mid.last - mid.first // a viewport's rows and the overscan on both sides
    expect(view.el.querySelectorAll('.frwt-row').length).toBeLessThanOrEqual(most)
    expect(names(view)[0]).toBe('r09999')
    expect(view.spacer.style.height).toBe(`${10000 * ROW_HEIGHT}px`)
    view.viewport.scrollTop = 5000 * ROW_HEIGHT
    view.viewport.dispatchEvent(new Event('scroll'))
    frames.run()
    expect(view.el.querySelectorAll('.frwt-row').length).toBeLessThanOrEqual(most)
    expect(names(view)).toContain('r04999')
    expect(view.body.style.transform).toBe(`translateY(${(5000 - 5) * ROW_HEIGHT}px)`)
    // An update redraws the visible rows without adding any.
    model.receive(...rowsMsg([row(4999, { phase: 'failed' })]))
    frames.run()
    const changed = [...view.el.querySelectorAll('.frwt-row')].find((r) => r.dataset.name === 'r04999')
    expect(changed.querySelector('.frw-badge').dataset.phase).toBe('failed')
    expect(view.el.querySelectorAll('.frwt-row').length).toBeLessThanOrEqual(most)
  })
})

describe('untrusted text', () => {
  it('shows hostile names, tasks and creators as text, never as markup', () => {
    const evil = '<img src=x onerror="window.pwned=1">'
    const { view } = setup([row(1, { name: evil, task: '<b>bold</b>', user: '<script>x()</script>', phase: '<i>x' })])
    const el = view.el.querySelector('.frwt-row')
    expect(el.querySelector('.frwt-name').textContent).toBe(evil)
    expect(el.querySelector('.frwt-task').textContent).toBe('<b>bold</b>')
    expect(view.el.querySelector('img, b, script, i')).toBeNull()
    expect(el.querySelector('.frw-badge').className).toBe('frw-badge frw-phase-unknown')
    expect(window.pwned).toBeUndefined()
  })
})

describe('actions', () => {
  it('opens the clicked run, and marks the opened one', () => {
    const { view, model, frames } = setup([row(1), row(2)])
    model.sent.length = 0
    click(view.el.querySelectorAll('.frwt-row')[1].querySelector('.frwt-task'))
    expect(model.sent).toEqual([{ type: 'open', name: 'r00001' }])
    model.set('opened', 'r00001')
    frames.run()
    expect(view.el.querySelector('.frwt-open').dataset.name).toBe('r00001')
  })

  it('aborts the selected runs that can still be aborted, after one confirm', () => {
    const { view, model, frames } = setup([row(1), row(2), row(3), row(4, { phase: 'succeeded', end: T0 + 9000 })])
    model.sent.length = 0
    expect(view.abortBtn.disabled).toBe(true)
    const checks = () => [...view.el.querySelectorAll('.frwt-check')]
    expect(checks()[0].disabled).toBe(true) // r00004 ended: not selectable
    for (const i of [1, 3]) click(checks()[i])
    frames.run()
    expect(view.abortBtn.textContent).toBe('Abort selected (2)')
    click(view.abortBtn)
    expect(view.confirmBox.hidden).toBe(false)
    expect(view.question.textContent).toBe('Abort 2 runs?')
    expect(model.sent).toEqual([]) // nothing before the confirm
    click(view.yesBtn)
    expect(model.sent).toEqual([{ type: 'abort', names: ['r00003', 'r00001'], reason: 'Aborted from the runs table' }])
    expect(view.confirmBox.hidden).toBe(true)
    expect(view.abortBtn.disabled).toBe(true)
  })

  it('leaves out a selected run that ended before the confirm', () => {
    const { view, model, frames } = setup([row(1), row(2)])
    for (const check of view.el.querySelectorAll('.frwt-check')) click(check)
    click(view.abortBtn)
    model.receive(...rowsMsg([row(2, { phase: 'succeeded', end: T0 + 5000 })]))
    frames.run()
    expect(view.question.textContent).toBe('Abort 1 run?')
    model.sent.length = 0
    click(view.yesBtn)
    expect(model.sent).toEqual([{ type: 'abort', names: ['r00001'], reason: 'Aborted from the runs table' }])
  })

  it('selects every shown run that can be aborted at once', () => {
    const { view, model, frames } = setup([row(1), row(2, { phase: 'failed', end: T0 + 3000 }), row(3, { task: 'other' })])
    view.filter.value = 'train'
    view.filter.dispatchEvent(new Event('input'))
    frames.run()
    view.selectAll.checked = true
    view.selectAll.dispatchEvent(new Event('change'))
    model.sent.length = 0
    click(view.abortBtn)
    click(view.yesBtn)
    expect(model.sent).toEqual([{ type: 'abort', names: ['r00001'], reason: 'Aborted from the runs table' }])
  })
})
