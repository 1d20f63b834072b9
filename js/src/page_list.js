/**
 * The runs list page: the notebook's runs table (table_view.js) over a PageModel fed by
 * WatchRuns (every run of the project, then each change); a row opens that run's page, "Abort
 * selected" sends AbortRun for each.
 *
 *     const stop = startListPage({ el, rpc, project, domain, runPath: (name) => '/v2/...' })
 */
import { phaseKey, timestampMs } from './connect.js'
import { PageModel } from './page_model.js'
import { keepFollowing } from './page_feed.js'
import { attachRowStore } from './run_rows.js'
import { TableView } from './table_view.js'

const RUNS = 'flyteidl2.workflow.RunService'
export const ABORT_REASON = 'Aborted from the runs page'

/** One table row of a Run (notebook/run_rows.py `row_of`). */
export function rowOf(run) {
  const action = run?.action ?? {}
  const meta = action.metadata ?? {}
  const user = meta.executedBy?.user ?? {}
  const status = action.status ?? {}
  return {
    name: String(action.id?.run?.name ?? ''),
    phase: phaseKey(status.phase),
    task: String(meta.task?.shortName || meta.task?.id?.name || ''),
    user: String(user.spec?.userHandle || user.id?.subject || meta.executedBy?.application?.id?.subject || ''),
    start: timestampMs(status.startTime),
    end: timestampMs(status.endTime),
  }
}

/** A `rows` message (run_rows.js `decodeRows`) and its two buffers. */
export function encodeRows(rows, reset = false) {
  const index = (map, value) => {
    if (!map.has(value)) map.set(value, map.size)
    return map.get(value)
  }
  const phases = new Map()
  const tasks = new Map()
  const users = new Map()
  const meta = new DataView(new ArrayBuffer(rows.length * 12))
  const times = new DataView(new ArrayBuffer(rows.length * 16))
  rows.forEach((row, i) => {
    meta.setUint32(i * 12, index(phases, row.phase), true)
    meta.setUint32(i * 12 + 4, index(tasks, row.task), true)
    meta.setUint32(i * 12 + 8, index(users, row.user), true)
    times.setFloat64(i * 16, row.start, true)
    times.setFloat64(i * 16 + 8, row.end, true)
  })
  const msg = { type: 'rows', reset, names: rows.map((r) => r.name), phases: [...phases.keys()], tasks: [...tasks.keys()], users: [...users.keys()] }
  return [msg, [meta, times]]
}

export function startListPage({ el, rpc, project, domain, runPath, onUnauthenticated = () => {}, navigate = (url) => globalThis.location.assign(url) }) {
  const stop = new AbortController()
  const rows = new Map()
  const model = new PageModel({ title: `Runs of ${project} · ${domain}`, total: 0, busy: '', notice: '', connection: { state: 'connected' }, opened: '' },
    (msg) => handle(msg))
  const store = attachRowStore(model)
  const view = new TableView({ model, store })
  el.append(view.el)

  async function handle(msg) {
    if (msg.type === 'sync') {
      if (rows.size) model.emit(...encodeRows([...rows.values()], true))
    } else if (msg.type === 'open') {
      navigate(runPath(String(msg.name)))
    } else if (msg.type === 'abort') {
      const names = Array.isArray(msg.names) ? msg.names.map(String) : []
      model.set({ busy: 'aborting' })
      const failed = []
      for (const name of names) {
        try {
          await rpc.unary(RUNS, 'AbortRun', { runId: { project, domain, name }, reason: ABORT_REASON })
        } catch (e) {
          if (e?.code === 'unauthenticated') return onUnauthenticated(e)
          if (e?.code !== 'failed_precondition') failed.push(`${name}: ${e?.message ?? e}`)
        }
      }
      model.set({ busy: '', notice: failed.length ? `Abort failed for ${failed.join('; ')}` : '' })
    }
  }

  keepFollowing(async (signal, connected) => {
    const request = { projectId: { name: project, domain, organization: '' } }
    let first = true
    for await (const response of rpc.stream(RUNS, 'WatchRuns', request, signal)) {
      connected()
      const batch = (response.runs ?? []).map(rowOf).filter((r) => r.name)
      // Every subscription starts with all runs of the project: the table starts over.
      if (first) rows.clear()
      for (const row of batch) rows.set(row.name, row)
      model.emit(...encodeRows(batch, first))
      model.set({ total: rows.size })
      first = false
    }
    return false
  }, {
    signal: stop.signal,
    onState: (state, e) => model.set({ connection: state === 'connected' ? { state } : { state: 'reconnecting', message: e?.message ?? '' } }),
    fatal: (e) => {
      if (e?.code !== 'unauthenticated') return false
      onUnauthenticated(e)
      return true
    },
  })

  return () => {
    stop.abort()
    view.destroy()
    store.dispose()
  }
}
