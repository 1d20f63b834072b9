/**
 * The run page and the runs list page, served by the Run service on its own port at the Flyte
 * console's paths: /v2/domain/{domain}/project/{project}/runs[/{name}]. The page holds no data:
 * it reads its URL and asks the service from the browser (Connect, JSON). A service with a token
 * needs it in every call: `#token=...` in the URL (what `flyte-run-widget open` adds), kept for
 * this tab only (sessionStorage) and taken out of the address bar; else a form asks for it.
 */
import './theme.css'
import './runs_table.css'
import './page.css'
import { ConnectClient } from './connect.js'
import { h } from './dom.js'
import { startListPage } from './page_list.js'
import { startRunPage } from './page_run.js'

const TOKEN_KEY = 'frw-token'
const RUN = /^\/v2\/domain\/([^/]+)\/project\/([^/]+)\/runs\/([^/]+)\/?$/
const LIST = /^\/v2\/domain\/([^/]+)\/project\/([^/]+)\/runs\/?$/

const enc = encodeURIComponent
export const listPath = (project, domain) => `/v2/domain/${enc(domain)}/project/${enc(project)}/runs`
export const runPath = (project, domain, name) => `${listPath(project, domain)}/${enc(name)}`

function decode(part) {
  try {
    return decodeURIComponent(part)
  } catch {
    return part
  }
}

/** The token from `#token=` (then removed from the address bar), else this tab's saved one. */
export function takeToken(loc = globalThis.location, storage = globalThis.sessionStorage, history = globalThis.history) {
  const match = /(?:^#|&)token=([^&]*)/.exec(loc.hash)
  if (match) {
    storage.setItem(TOKEN_KEY, decode(match[1]))
    history.replaceState(null, '', loc.pathname + loc.search)
  }
  return storage.getItem(TOKEN_KEY) ?? ''
}

function askToken(root, hadToken) {
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', 'aria-label': 'Token', placeholder: 'the token of --token-file' })
  const form = h('form', { class: 'frw frw-token' },
    h('div', {}, hadToken
      ? 'The Run service refused this token. Enter the right one:'
      : 'This Run service needs its token: `flyte-run-widget open RUN` opens this page with it, or enter the one in the service\'s --token-file (service.token in its data folder for the service a notebook starts).'),
    h('div', { class: 'frw-token-row' }, input, h('button', { type: 'submit', class: 'frw-btn' }, 'Use token')))
  form.addEventListener('submit', (ev) => {
    ev.preventDefault()
    globalThis.sessionStorage.setItem(TOKEN_KEY, input.value.trim())
    globalThis.location.reload()
  })
  root.replaceChildren(form)
  input.focus()
}

export function main(root = document.getElementById('frw-root')) {
  const token = takeToken()
  const rpc = new ConnectClient({ token: () => token })
  const onUnauthenticated = () => askToken(root, token.length > 0)
  const path = globalThis.location.pathname
  const run = RUN.exec(path)
  const list = run ? null : LIST.exec(path)
  if (run) {
    const [domain, project, name] = run.slice(1).map(decode)
    document.title = `${name} · Flyte run`
    const nav = h('nav', { class: 'frw frw-nav' }, h('a', { href: listPath(project, domain) }, `Runs of ${project} · ${domain}`))
    const el = h('div')
    root.replaceChildren(nav, el)
    startRunPage({ el, rpc, runId: { project, domain, name }, onUnauthenticated })
  } else if (list) {
    const [domain, project] = list.slice(1).map(decode)
    document.title = `Runs of ${project} · Flyte`
    startListPage({ el: root, rpc, project, domain, runPath: (name) => runPath(project, domain, name), onUnauthenticated })
  }
}

main()
