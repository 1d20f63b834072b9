/**
 * A plain click on the run name in a notebook opens the run page signed in.
 *
 *     link.addEventListener('click', (event) => openSigned(model, url, event))
 *
 * The embedded service's page needs its token, which only the kernel holds: a trait would save it
 * into the notebook. The click opens a blank tab at once (a popup blocker allows a tab only while
 * the click is handled), asks the kernel with a custom message, and points the tab at the answer:
 * the address with `#token=`, or '' when the page needs no token of ours. Without an answer in
 * ANSWER_MS (a kernel busy with a cell), the plain address. Modified clicks stay plain links.
 */
import { safeHttpUrl } from './dom.js'

export const ANSWER_MS = 2500
let seq = 0

export function openSigned(model, url, event, win = globalThis) {
  if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return
  // The text transport answers through a trait, saved with the notebook: the kernel never signs there.
  if (model.get('transport') === 'text') return
  const tab = win.open('', '_blank')
  if (!tab) return
  event.preventDefault()
  tab.opener = null
  const id = `${Date.now().toString(36)}-${++seq}`
  const go = (target) => {
    win.clearTimeout(timer)
    model.off('msg:custom', onMsg)
    tab.location.href = target
  }
  const onMsg = (msg) => {
    if (msg?.type !== 'page_url' || msg.id !== id) return
    const signed = safeHttpUrl(msg.url)
    go(signed?.startsWith(`${url}#token=`) ? signed : url)
  }
  const timer = win.setTimeout(() => go(url), ANSWER_MS)
  model.on('msg:custom', onMsg)
  model.send({ type: 'page_url', id })
}
