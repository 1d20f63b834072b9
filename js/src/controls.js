/**
 * Abort (with a confirm step) and Wait buttons.
 *
 *     const controls = createControls({ store, send, state: () => ({ phase, busy }) })
 *     controls.update()   // after phase or busy change
 *
 * Abort goes out at most once per widget model (the flag lives in the model-level store, so a
 * second view of the same widget knows too).
 */
import { isTerminal } from './badge.js'
import { h, show } from './dom.js'

export const ABORT_REASON = 'Aborted from the notebook widget'

export function createControls({ store, send, state }) {
  let confirming = false
  let waitPending = false
  let lastBusy = state().busy

  const abortBtn = h('button', {
    type: 'button',
    class: 'frw-btn frw-abort',
    onclick: () => {
      confirming = true
      update()
      yesBtn.focus()
    },
  }, 'Abort')
  const yesBtn = h('button', {
    type: 'button',
    class: 'frw-btn frw-danger',
    onclick: () => {
      confirming = false
      if (!store.abortSent && !isTerminal(state().phase)) {
        store.markAbortSent()
        send({ type: 'abort', reason: ABORT_REASON })
      }
      update()
    },
  }, 'Yes, abort')
  const cancelBtn = h('button', {
    type: 'button',
    class: 'frw-btn',
    onclick: () => {
      confirming = false
      update()
      abortBtn.focus()
    },
  }, 'Cancel')
  const confirmBox = h('span', { class: 'frw-confirm', role: 'group', 'aria-label': 'Confirm abort' },
    h('span', { class: 'frw-confirm-q' }, 'Abort run?'), yesBtn, cancelBtn)
  const waitBtn = h('button', {
    type: 'button',
    class: 'frw-btn frw-wait',
    title: 'Follow the run to its end without blocking the kernel, then show its outputs',
    onclick: () => {
      if (waitBtn.disabled) return
      waitPending = true
      send({ type: 'wait' })
      update()
    },
  }, 'Wait')
  const el = h('span', { class: 'frw-actions' }, abortBtn, confirmBox, waitBtn)

  function update() {
    const { phase, busy } = state()
    const terminal = isTerminal(phase)
    if (busy !== lastBusy) {
      waitPending = false // the kernel has seen the request
      lastBusy = busy
    }
    if (store.abortSent) confirming = false
    if (terminal) {
      confirming = false
      waitPending = false
    }
    const aborting = busy === 'aborting' || (store.abortSent && !terminal)
    abortBtn.textContent = aborting ? 'Aborting…' : 'Abort'
    abortBtn.disabled = terminal || store.abortSent || busy === 'aborting'
    abortBtn.title = terminal ? 'The run has ended' : store.abortSent ? 'Abort requested' : 'Abort this run'
    show(abortBtn, !confirming)
    show(confirmBox, confirming)
    const waiting = busy === 'waiting' || waitPending
    waitBtn.textContent = waiting ? 'Waiting…' : 'Wait'
    waitBtn.disabled = terminal || waiting
  }

  const unsubscribe = store.subscribeState(update)
  update()
  return { el, update, destroy: unsubscribe }
}
