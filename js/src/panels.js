/**
 * The error panel, the outputs panel, the connection banner and the sign-in panel. All text is
 * set as text.
 *
 *     const panel = createErrorPanel(); panel.update({ kind: 'USER', code: 'E1', message })
 */
import { h, safeHttpUrl, show } from './dom.js'

const FIRST_LINE_MAX = 300

export function createErrorPanel() {
  const kind = h('span', { class: 'frw-error-kind' })
  const code = h('code', { class: 'frw-error-code' })
  const first = h('span', { class: 'frw-error-first' })
  const full = h('pre', { class: 'frw-pre' })
  const details = h('details', { class: 'frw-error-details' }, h('summary', {}, 'Full message'), full)
  const el = h('div', { class: 'frw-error', role: 'alert' }, h('div', { class: 'frw-error-head' }, kind, code, first), details)
  show(el, false)
  return {
    el,
    update(error) {
      const message = error && typeof error.message === 'string' ? error.message : ''
      show(el, message.length > 0)
      if (!message) return
      kind.textContent = String(error.kind || 'ERROR')
      code.textContent = error.code ? String(error.code) : ''
      show(code, Boolean(error.code))
      const lines = message.replace(/\s+$/, '').split('\n')
      const head = lines[0].length > FIRST_LINE_MAX ? `${lines[0].slice(0, FIRST_LINE_MAX)}…` : lines[0]
      first.textContent = head
      full.textContent = message
      show(details, lines.length > 1 || head !== lines[0])
    },
  }
}

export function createOutputsPanel() {
  const pre = h('pre', { class: 'frw-pre' })
  const el = h('div', { class: 'frw-outputs' }, h('div', { class: 'frw-panel-title' }, 'Outputs'), pre)
  show(el, false)
  return {
    el,
    update(outputs) {
      const text = typeof outputs === 'string' ? outputs : ''
      show(el, text.length > 0)
      pre.textContent = text
    },
  }
}

export function createBanner() {
  const el = h('div', { class: 'frw-banner', role: 'status' })
  show(el, false)
  return {
    el,
    update(connection, terminal) {
      const state = connection?.state
      const message = typeof connection?.message === 'string' ? connection.message : ''
      let text = ''
      if (state === 'reconnecting') text = message ? `Reconnecting… ${message}` : 'Reconnecting…'
      else if (state === 'closed' && message && !terminal) text = `Not live: ${message}`
      el.className = state === 'reconnecting' ? 'frw-banner frw-reconnecting' : 'frw-banner frw-closed'
      el.textContent = text
      show(el, text.length > 0)
    },
  }
}

/** A one-line notice from the kernel (e.g. "abort failed: ..."); hidden when empty. */
export function createNotice() {
  const el = h('div', { class: 'frw-banner frw-notice', role: 'status' })
  show(el, false)
  return {
    el,
    update(notice) {
      const text = typeof notice === 'string' ? notice : ''
      el.textContent = text
      show(el, text.length > 0)
    },
  }
}

/**
 * What to do to sign in: `{ url, code, endpoint }` from the kernel (a device login's verification
 * link and user code). Only an http(s) URL becomes a link; everything is set as text.
 */
export function createSignInPanel() {
  const endpoint = h('span', { class: 'frw-signin-endpoint' })
  const where = h('span', { class: 'frw-signin-url' })
  const code = h('code', { class: 'frw-signin-code' })
  const codePart = h('span', {}, ' and enter the code ', code)
  const el = h('div', { class: 'frw-signin', role: 'alert' }, 'Sign in to ', endpoint, ': open ', where, codePart)
  show(el, false)
  return {
    el,
    update(signIn) {
      const raw = typeof signIn?.url === 'string' ? signIn.url : ''
      const url = safeHttpUrl(raw)
      const userCode = typeof signIn?.code === 'string' ? signIn.code : ''
      show(el, raw.length > 0)
      endpoint.textContent = typeof signIn?.endpoint === 'string' ? signIn.endpoint : 'the service'
      // The link exists only while there is one to follow.
      where.replaceChildren(url
        ? h('a', { class: 'frw-signin-link', href: url, target: '_blank', rel: 'noopener noreferrer' }, url)
        : raw)
      code.textContent = userCode
      show(codePart, userCode.length > 0)
    },
  }
}
