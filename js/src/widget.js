/**
 * One view of a RunWidget: header, panels, controls and the log view, wired to the model.
 *
 *     const cleanup = renderWidget({ model, el })
 */
import { createBadge, isTerminal } from './badge.js'
import { createClock } from './clock.js'
import { createControls } from './controls.js'
import { h, safeHttpUrl, show } from './dom.js'
import { LogView } from './logview.js'
import { createBanner, createErrorPanel, createNotice, createOutputsPanel, createSignInPanel } from './panels.js'
import { attachStore, findStore } from './store.js'
import { TreeView } from './tree.js'

const TRAITS = [
  'run_name', 'run_url', 'task_name', 'phase', 'raw_phase', 'start_ms', 'end_ms', 'now_ms',
  'attempts', 'error', 'outputs', 'connection', 'busy', 'notice', 'sign_in', 'selected', 'tree_size',
]

export function renderWidget({ model, el, env = {} }) {
  // initialize() normally created the store; without it (an old host) this view owns one.
  let store = findStore(model)
  const ownsStore = !store
  if (!store) store = attachStore(model)
  const get = (name) => model.get(name)
  const send = (msg) => {
    model.send(msg)
    store.outbox.wake()
  }

  const nameSlot = h('span', { class: 'frw-name' })
  const task = h('span', { class: 'frw-task' })
  const badge = createBadge()
  const clock = createClock({
    times: () => ({ start: Number(get('start_ms')) || 0, end: Number(get('end_ms')) || 0 }),
    kernelNow: () => store.kernelNow(),
    timers: env.timers ?? globalThis,
  })
  const attempt = h('span', { class: 'frw-attempt' })
  const controls = createControls({
    store,
    send,
    state: () => ({ phase: String(get('phase') ?? ''), busy: String(get('busy') ?? '') }),
  })
  const banner = createBanner()
  const notice = createNotice()
  const signIn = createSignInPanel()
  const errorPanel = createErrorPanel()
  const outputsPanel = createOutputsPanel()
  const tree = new TreeView({ store, send, selected: () => String(get('selected') ?? ''), env: env.frames })
  const selection = h('div', { class: 'frw-selection' })
  const logs = new LogView({ store, send, name: () => String(get('run_name') ?? ''), env: env.frames })

  const root = h('div', { class: 'frw' },
    signIn.el,
    banner.el,
    notice.el,
    h('div', { class: 'frw-header' },
      h('div', { class: 'frw-title' }, nameSlot, task),
      h('div', { class: 'frw-status' }, badge.el, clock.el, attempt, controls.el)),
    tree.el,
    selection,
    errorPanel.el,
    outputsPanel.el,
    logs.el)

  function renderName() {
    const name = String(get('run_name') || 'run')
    const url = safeHttpUrl(get('run_url'))
    const link = url
      ? h('a', {
        href: url,
        target: '_blank',
        rel: 'noopener noreferrer',
        title: 'Open the run in the Flyte UI',
        // In a notebook, a plain click asks the kernel for the signed address (page_link.js).
        onclick: env.openLink && ((event) => env.openLink(url, event)),
      }, name)
      : h('span', {}, name)
    nameSlot.replaceChildren(link)
  }

  function update() {
    renderName()
    const taskName = String(get('task_name') ?? '')
    task.textContent = taskName
    show(task, taskName.length > 0)
    const phase = String(get('phase') ?? '')
    badge.update(phase)
    badge.el.title = `phase ${get('raw_phase') ?? ''}`.trim()
    clock.update()
    const attempts = Number(get('attempts')) || 0
    attempt.textContent = attempts > 0 ? `attempt ${attempts}` : ''
    show(attempt, attempts > 0)
    controls.update()
    banner.update(get('connection'), isTerminal(phase))
    notice.update(get('notice'))
    signIn.update(get('sign_in'))
    errorPanel.update(get('error'))
    outputsPanel.update(get('outputs'))
    const selected = String(get('selected') ?? '')
    selection.textContent = selected ? `Action ${selected}: its log, error and outputs` : ''
    show(selection, selected.length > 0)
    // A view rendered after the first tree messages went out asks for the whole tree.
    if ((Number(get('tree_size')) || 0) > store.tree.size && !treeAsked) {
      treeAsked = true
      send({ type: 'tree_request' })
    }
    tree.invalidate()
  }
  let treeAsked = false

  for (const name of TRAITS) model.on(`change:${name}`, update)
  update()
  el.append(root)

  return () => {
    for (const name of TRAITS) model.off(`change:${name}`, update)
    clock.stop()
    controls.destroy()
    logs.destroy()
    tree.destroy()
    root.remove()
    if (ownsStore) store.dispose()
  }
}

/** A view of a SignInWidget: only the sign-in panel (shown while a sign-in waits). */
export function renderSignIn({ model, el }) {
  const panel = createSignInPanel()
  const root = h('div', { class: 'frw' }, panel.el)
  const update = () => panel.update(model.get('sign_in'))
  model.on('change:sign_in', update)
  update()
  el.append(root)
  return () => {
    model.off('change:sign_in', update)
    root.remove()
  }
}
