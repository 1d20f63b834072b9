/**
 * The text transport (flyte_run_widget/notebook/host.py), for hosts that drop custom-message
 * buffers and widget updates sent from a kernel's background thread (Google Colab).
 *
 *     const stop = followOutbox(model, (msg, buffers) => store.handle(msg, buffers))
 *
 * While the model's `transport` is "text", this model (not each view) sends `{type: 'poll'}`
 * every POLL_MS; the kernel answers on its main thread by updating the changed traits and the
 * `outbox` trait: `{seq, idle, items: [{msg, b64: [...]}]}`. Each item is handed on as a custom
 * message would be, its buffers still base64 (batch.js decodes them). Polling stops once the
 * kernel says it is idle and restarts when a view asks for something.
 */
export const POLL_MS = 500

export function followOutbox(model, deliver, timers = globalThis) {
  if (model.get('transport') !== 'text') return { stop() {}, wake() {} }
  let seen = 0
  let timer = null
  const poll = () => model.send({ type: 'poll' })
  const start = () => {
    if (timer === null) timer = timers.setInterval(poll, POLL_MS)
  }
  const onOutbox = () => {
    let box
    try {
      box = JSON.parse(String(model.get('outbox') || '{}'))
    } catch {
      console.warn('flyte-run-widget: ignored a malformed outbox')
      return
    }
    if (!Number.isInteger(box.seq) || box.seq <= seen) return
    seen = box.seq
    for (const item of Array.isArray(box.items) ? box.items : []) deliver(item?.msg, item?.b64 ?? [])
    if (box.idle && timer !== null) {
      timers.clearInterval(timer)
      timer = null
    }
  }
  model.on('change:outbox', onOutbox)
  start()
  poll()
  return {
    stop() {
      model.off('change:outbox', onOutbox)
      if (timer !== null) timers.clearInterval(timer)
      timer = null
    },
    wake: start,
  }
}
