/**
 * The run page: the notebook widget's view (widget.js) over a PageModel that this module keeps
 * up to date from the service: WatchRunDetails for the header, WatchActions for the tree, the
 * selected action's WatchActionDetails and TailLogs of each attempt (binary, log_proto.js);
 * Abort sends AbortRun.
 *
 *     const stop = startRunPage({ el, rpc, runId: { project, domain, name }, onUnauthenticated })
 */
import { isTerminal } from './badge.js'
import { phaseKey, timestampMs } from './connect.js'
import { PageModel } from './page_model.js'
import { decodeTailLogsResponse, encodeTailLogsRequest } from './log_proto.js'
import { encodeColumns, errorOf, keepFollowing, PageTree } from './page_feed.js'
import { attachStore } from './store.js'
import { renderWidget } from './widget.js'

const RUNS = 'flyteidl2.workflow.RunService'
const LOGS = 'flyteidl2.workflow.RunLogsService'
export const ABORT_REASON = 'Aborted from the run page'

export function startRunPage({ el, rpc, runId, onUnauthenticated = () => {} }) {
  const stop = new AbortController()
  const tree = new PageTree()
  let root = '' // the run's root action, once known
  let focus = null // the selected action's jobs: { name, stop, attempts: Map(attempt -> lines held) }

  const model = new PageModel({
    run_name: runId.name, run_url: '', task_name: '', phase: '', raw_phase: 0, start_ms: 0, end_ms: 0,
    now_ms: 0, attempts: 0, error: {}, outputs: '', connection: { state: 'connected' }, busy: '', notice: '',
    sign_in: null, selected: '', tree_size: 0, max_lines: 100000, log_attempts: [],
  }, (msg) => handle(msg))
  const store = attachStore(model)

  const fatal = (e) => {
    if (e?.code === 'unauthenticated') {
      onUnauthenticated(e)
      stop.abort()
      return true
    }
    if (e?.code === 'not_found') {
      model.set({ notice: `No run named ${runId.name} in project ${runId.project}, domain ${runId.domain}` })
      return true
    }
    return false
  }
  const onState = (state, e) =>
    model.set({ connection: state === 'connected' ? { state } : { state, message: e?.message ?? '' } })
  const follow = (subscribe, signal = stop.signal) =>
    keepFollowing(subscribe, { signal, onState, fatal }).catch((e) => model.set({ notice: String(e?.message ?? e) }))

  const actionId = (name) => ({ run: runId, name })

  function header(details) {
    const action = details?.action ?? {}
    const status = action.status ?? {}
    const phase = phaseKey(status.phase)
    const meta = action.metadata ?? {}
    if (!root && action.id?.name) {
      root = action.id.name
      if (!focus) focusOn(root)
    }
    model.set({
      task_name: String(meta.task?.shortName || meta.task?.id?.name || ''),
      phase,
      start_ms: timestampMs(status.startTime),
      end_ms: timestampMs(status.endTime),
      attempts: Number(status.attempts) || 0,
      now_ms: Date.now(),
      ...(isTerminal(phase) && model.get('busy') === 'aborting' ? { busy: '' } : {}),
    })
    if (focus?.name === root) panels(action)
    if (tree.merge(action)) sendTree()
  }

  /** The focused action's error and attempts; each new attempt's log followed. */
  function panels(details) {
    const phase = phaseKey(details?.status?.phase)
    const numbers = (details.attempts ?? []).map((a) => Number(a.attempt)).filter((n) => n > 0)
    const started = ['initializing', 'running'].includes(phase) || isTerminal(phase)
    const attempts = [...new Set(numbers.length ? numbers : started ? [1] : [])].sort((a, b) => a - b)
    model.set({ error: errorOf(details) })
    if (attempts.join() !== (model.get('log_attempts') ?? []).join()) model.set({ log_attempts: attempts })
    for (const n of attempts) tailLogs(n)
  }

  function tailLogs(attempt) {
    const job = focus
    if (!job || job.attempts.has(attempt)) return
    job.attempts.set(attempt, 0)
    follow(async (signal, connected) => {
      let skip = job.attempts.get(attempt) // lines already shown, sent again by a new subscription
      const request = encodeTailLogsRequest(actionId(job.name), attempt)
      for await (const bytes of rpc.streamProto(LOGS, 'TailLogs', request, signal)) {
        connected()
        let lines = decodeTailLogsResponse(bytes)
        if (skip > 0) {
          const dropped = Math.min(skip, lines.texts.length)
          lines = { texts: lines.texts.slice(dropped), ts: lines.ts.slice(dropped), origin: lines.origin.slice(dropped) }
          skip -= dropped
        }
        const count = lines.texts.length
        if (!count) continue
        const first = job.attempts.get(attempt)
        job.attempts.set(attempt, first + count)
        model.emit({ type: 'logs', attempt, first, count }, encodeColumns(lines))
      }
      const end = { texts: [], ts: [], origin: [] }
      model.emit({ type: 'logs', attempt, first: job.attempts.get(attempt), count: 0, done: true }, encodeColumns(end))
      return true
    }, job.stop.signal)
  }

  function focusOn(name) {
    if (focus) {
      focus.stop.abort()
      model.emit({ type: 'logs_reset' })
      model.set({ log_attempts: [], error: {} })
    }
    focus = { name, stop: new AbortController(), attempts: new Map() }
    stop.signal.addEventListener('abort', () => focus?.stop.abort(), { once: true })
    model.set({ selected: name === root ? '' : name })
    if (name === root) {
      // The header's stream brings the root's details; start from the last ones known.
      rpc.unary(RUNS, 'GetRunDetails', { runId }, stop.signal).then((r) => focus?.name === root && panels(r.details?.action ?? {})).catch(() => {})
      return
    }
    const job = focus
    follow(async (signal, connected) => {
      let phase = ''
      for await (const response of rpc.stream(RUNS, 'WatchActionDetails', { actionId: actionId(name) }, signal)) {
        connected()
        if (!response.details) continue
        phase = phaseKey(response.details.status?.phase)
        panels(response.details)
      }
      return isTerminal(phase) // an action that ended changes no more
    }, job.stop.signal)
  }

  function sendTree(all = false) {
    const msg = tree.message(all)
    if (!msg) return
    model.emit(msg)
    model.set({ tree_size: tree.nodes.length })
  }

  async function handle(msg) {
    try {
      if (msg.type === 'abort') {
        model.set({ busy: 'aborting' })
        await rpc.unary(RUNS, 'AbortRun', { runId, reason: ABORT_REASON })
      } else if (msg.type === 'abort_action') {
        await rpc.unary(RUNS, 'AbortAction', { actionId: actionId(String(msg.name)), reason: ABORT_REASON })
      } else if (msg.type === 'select') {
        const name = String(msg.name)
        if (name !== focus?.name) focusOn(name)
      } else if (msg.type === 'logs_request') {
        if (Number.isInteger(msg.attempt) && msg.attempt > 0) tailLogs(msg.attempt)
      } else if (msg.type === 'tree_request') {
        sendTree(true)
      } else if (msg.type === 'tree_want') {
        for (const name of Array.isArray(msg.names) ? msg.names.slice(0, 50) : []) {
          const r = await rpc.unary(RUNS, 'GetActionDetails', { actionId: actionId(String(name)) })
          if (r.details && tree.merge(r.details)) sendTree()
        }
      }
    } catch (e) {
      if (fatal(e)) return
      if (msg.type === 'abort') model.set({ busy: '' })
      model.set({ notice: `${msg.type} failed: ${e?.message ?? e}` })
    }
  }

  const cleanup = renderWidget({ model, el })
  follow(async (signal, connected) => {
    for await (const response of rpc.stream(RUNS, 'WatchRunDetails', { runId }, signal)) {
      connected()
      header(response.details)
    }
    return isTerminal(model.get('phase'))
  })
  follow(async (signal, connected) => {
    for await (const response of rpc.stream(RUNS, 'WatchActions', { runId }, signal)) {
      connected()
      let changed = false
      for (const e of response.enrichedActions ?? []) changed = tree.merge(e.action) || changed
      if (changed) sendTree()
    }
    return isTerminal(model.get('phase'))
  })

  return () => {
    stop.abort()
    cleanup()
    store.dispose()
  }
}
