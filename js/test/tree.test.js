import { afterEach, describe, expect, it } from 'vitest'
import { attachStore } from '../src/store.js'
import { BAR_MIN, MAX_VISIBLE_ROWS, TREE_ROW, TreeView } from '../src/tree.js'
import { LogView } from '../src/logview.js'
import { fakeModel, lines, logsMsg, manualFrames } from './helpers.js'

const cleanups = []
afterEach(() => {
  while (cleanups.length) cleanups.pop()()
})

function setup(overrides = {}) {
  const model = fakeModel({ selected: '', tree_size: 0, ...overrides })
  const store = attachStore(model)
  const frames = manualFrames()
  const view = new TreeView({ store, send: (m) => model.send(m), selected: () => model.get('selected'), env: frames })
  document.body.append(view.el)
  cleanups.push(() => {
    view.destroy()
    store.dispose()
  })
  return { model, store, frames, view }
}

/** What flyte_run_widget/notebook/tree.py sends: identity and state columns for `nodes`
 * ({ row, name, parent (row), group, phase, start, end, attempts, detailed }). */
function treeMsg(nodes, base = 1700000000000) {
  return {
    type: 'tree',
    size: nodes.length,
    k: nodes.map((n) => n.row),
    n: nodes.map((n) => n.name),
    p: nodes.map((n) => n.parent ?? -1),
    g: nodes.map((n) => n.group ?? ''),
    t: nodes.map((n) => n.task ?? 'job'),
    d: nodes.map((n) => (n.detailed === false ? 0 : 1)),
    i: nodes.map((n) => n.row),
    b: base,
    ph: nodes.map((n) => n.phase ?? 4),
    s: nodes.map((n) => n.start ?? 0),
    e: nodes.map((n) => n.end ?? -1),
    a: nodes.map((n) => n.attempts ?? 1),
  }
}

function fanOut(count, make = (i) => ({ name: `a${i + 1}` })) {
  const nodes = [{ row: 0, name: 'a0' }]
  for (let i = 0; i < count; i++) nodes.push({ row: i + 1, parent: 0, ...make(i) })
  return nodes
}

const names = (view) => [...view.el.querySelectorAll('.frw-trow .frw-tname')].map((e) => e.textContent)

function scrollTo(view, top) {
  view.viewport.scrollTop = top
  view.viewport.dispatchEvent(new Event('scroll'))
}

describe('tree view', () => {
  it('is hidden and asks for no frames while the run has only its root action', () => {
    const { model, frames, view } = setup()
    model.receive(treeMsg([{ row: 0, name: 'a0' }]))
    expect(view.el.hidden).toBe(true)
    expect(frames.pending).toBe(0)
  })

  it('keeps the DOM small with 10,000 children (virtualised) and scrolls to any of them', () => {
    const { model, frames, view } = setup()
    model.receive(treeMsg(fanOut(10000)))
    frames.run()
    const maxRows = MAX_VISIBLE_ROWS + 2 * 4 + 1
    expect(view.el.querySelectorAll('.frw-trow').length).toBeLessThanOrEqual(maxRows)
    expect(view.spacer.style.height).toBe(`${10001 * TREE_ROW}px`)
    expect(names(view).slice(0, 3)).toEqual(['a0', 'a1', 'a2'])
    expect(view.countEl.textContent).toBe('10,001 actions')
    scrollTo(view, 5000 * TREE_ROW)
    frames.run()
    expect(view.el.querySelectorAll('.frw-trow').length).toBeLessThanOrEqual(maxRows)
    expect(names(view)).toContain('a5000')
    expect(view.el.querySelectorAll('*').length).toBeLessThan(400)
  })

  it('draws many messages in one frame, applying changes in place', () => {
    const { model, frames, view } = setup()
    model.receive(treeMsg(fanOut(3)))
    for (let i = 0; i < 50; i++) model.receive(treeMsg([{ row: 2, name: 'a2', parent: 0, phase: i % 2 ? 4 : 5 }]))
    model.receive(treeMsg([{ row: 2, name: 'a2', parent: 0, phase: 6 }]))
    expect(frames.pending).toBe(1)
    frames.run()
    const row = [...view.el.querySelectorAll('.frw-trow')].find((r) => r.textContent.includes('a2'))
    expect(row.className).toContain('frw-phase-failed')
    expect(names(view)).toEqual(['a0', 'a1', 'a2', 'a3'])
  })

  it('re-flattens the tree only when actions are added or moved, not when phases change', () => {
    const { model, frames, view } = setup()
    model.receive(treeMsg(fanOut(10000)))
    const rows = view.tree.rows()
    const stateOnly = { ...treeMsg([{ row: 5, name: 'a5', parent: 0, phase: 6 }]), k: [], n: [], p: [], g: [], t: [], d: [] }
    model.receive(stateOnly)
    expect(view.tree.rows()).toBe(rows)
    frames.run()
    const row = [...view.el.querySelectorAll('.frw-trow')].find((r) => r.textContent.includes('a5'))
    expect(row.className).toContain('frw-phase-failed')
    model.receive(treeMsg([{ row: 10001, name: 'late', parent: 0 }]))
    expect(view.tree.rows()).not.toBe(rows)
    expect(view.tree.rows()).toHaveLength(10002)
  })

  it('shows hostile action, group and task names as text and creates no element from them', () => {
    const { model, frames, view } = setup()
    const evil = '<img src=x onerror="globalThis.pwned=1"><script>globalThis.pwned=1</script>'
    model.receive(treeMsg(fanOut(6, (i) => ({ name: `${evil}${i}`, group: i < 5 ? `<b>${evil}</b>` : '', task: evil }))))
    frames.run()
    expect(view.el.querySelectorAll('img, script, b').length).toBe(0)
    expect(names(view)).toContain(`<b>${evil}</b>`)
    expect(names(view)).toContain(`${evil}0`)
    expect(globalThis.pwned).toBeUndefined()
  })

  it('folds children of a group into a node with their count and a stacked phase bar', () => {
    const { model, frames, view } = setup()
    const phases = [5, 5, 6, 4, 1, 5, 5]
    model.receive(treeMsg(fanOut(7, (i) => ({ name: `c${i}`, group: 'fan', phase: phases[i] }))))
    frames.run()
    const group = view.el.querySelector('.frw-tgroup')
    expect(group.querySelector('.frw-tname').textContent).toBe('fan')
    expect(group.querySelector('.frw-tmeta').textContent).toBe('7 actions')
    expect(7).toBeGreaterThanOrEqual(BAR_MIN)
    const segs = [...group.querySelectorAll('.frw-bar > span')].map((s) => [s.className, s.style.flexGrow])
    expect(segs).toEqual([['frw-phase-failed', '1'], ['frw-phase-running', '1'], ['frw-phase-queued', '1'], ['frw-phase-succeeded', '4']])
    expect(names(view)).toHaveLength(9) // root, group, 7 children
    group.querySelector('.frw-fold').click()
    frames.run()
    expect(names(view)).toEqual(['a0', 'fan'])
  })

  it('selects a node with a click and aborts it only after the confirm step, once', () => {
    const { model, frames, view } = setup()
    model.receive(treeMsg(fanOut(2)))
    frames.run()
    const rowOf = (name) => [...view.el.querySelectorAll('.frw-trow')].find((r) => r.querySelector('.frw-tname').textContent === name)
    expect(rowOf('a0').querySelector('.frw-tabort')).toBeNull() // the run's Abort is in the header
    rowOf('a2').querySelector('.frw-tname').click()
    expect(model.sent.at(-1)).toEqual({ type: 'select', name: 'a2' })
    model.set('selected', 'a2')
    view.invalidate()
    frames.run()
    expect(rowOf('a2').getAttribute('aria-selected')).toBe('true')
    rowOf('a2').querySelector('.frw-tabort').click()
    frames.run()
    expect(model.sent.filter((m) => m.type === 'abort_action')).toEqual([])
    rowOf('a2').querySelector('[data-do=yes]').click()
    frames.run()
    expect(model.sent.filter((m) => m.type === 'abort_action')).toEqual([
      { type: 'abort_action', name: 'a2', reason: 'Aborted from the notebook widget' },
    ])
    expect(rowOf('a2').textContent).toContain('Aborting…')
    expect(rowOf('a2').querySelector('button')).toBeNull()
  })

  it('asks the kernel for details of the rows in sight that lack them, once each', () => {
    const { model, frames } = setup()
    model.receive(treeMsg(fanOut(500, (i) => ({ name: `a${i + 1}`, detailed: false }))))
    frames.run()
    const wants = model.sent.filter((m) => m.type === 'tree_want')
    expect(wants).toHaveLength(1)
    expect(wants[0].names.length).toBeLessThan(30)
    expect(wants[0].names).toContain('a1')
    model.receive(treeMsg([{ row: 1, name: 'a1', parent: 0, phase: 5 }]))
    frames.run()
    expect(model.sent.filter((m) => m.type === 'tree_want')).toHaveLength(1)
  })

  it('ignores a malformed message and survives a parent cycle', () => {
    const { model, frames, view } = setup()
    const bad = treeMsg(fanOut(2))
    bad.n = bad.n.slice(1)
    model.receive(bad)
    expect(view.tree.size).toBe(0)
    model.receive(treeMsg([{ row: 0, name: 'a0' }, { row: 1, name: 'x', parent: 2 }, { row: 2, name: 'y', parent: 1 }]))
    frames.run()
    expect(names(view)).toEqual(['a0'])
  })
})

describe('selection in the log view', () => {
  it('drops the previous action\'s lines and asks for the new one\'s log', () => {
    const model = fakeModel()
    const store = attachStore(model)
    const frames = manualFrames()
    const logs = new LogView({ store, send: (m) => model.send(m), env: frames })
    cleanups.push(() => {
      logs.destroy()
      store.dispose()
    })
    model.receive(...logsMsg(1, 0, lines(0, 5)))
    frames.run()
    expect(store.buffers.get(1).end).toBe(5)
    model.receive({ type: 'logs_reset' })
    expect(store.buffers.get(1)?.end ?? 0).toBe(0)
    expect(model.sent.filter((m) => m.type === 'logs_request').at(-1)).toEqual({ type: 'logs_request', attempt: 1, from: 0 })
    model.receive(...logsMsg(1, 0, lines(100, 2)))
    frames.run()
    expect([...logs.el.querySelectorAll('.frw-row')].map((r) => r.textContent)).toEqual(['line 100', 'line 101'])
  })
})
