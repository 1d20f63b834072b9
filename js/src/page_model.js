/**
 * A stand-in for an anywidget model on the run page, where no kernel exists: traits set by the
 * page's own code, `msg:custom` messages it emits, and `send` going to a handler of the page.
 * The widget's modules (widget.js, store.js, table_view.js, ...) take it as they take a model.
 *
 *     const model = new PageModel({ phase: 'queued' }, (msg) => handle(msg))
 *     model.set({ phase: 'running' })       // views redraw
 *     model.emit({ type: 'logs', ... }, buffers)
 */
export class PageModel {
  constructor(traits = {}, onSend = () => {}) {
    this.traits = { ...traits }
    this.handlers = new Map()
    this.onSend = onSend
  }

  get(name) {
    return this.traits[name]
  }

  set(changes) {
    const changed = []
    for (const [name, value] of Object.entries(changes)) {
      if (this.traits[name] === value) continue
      this.traits[name] = value
      changed.push(name)
    }
    for (const name of changed) this.fire(`change:${name}`)
  }

  on(event, fn) {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set())
    this.handlers.get(event).add(fn)
  }

  off(event, fn) {
    this.handlers.get(event)?.delete(fn)
  }

  fire(event, ...args) {
    for (const fn of [...(this.handlers.get(event) ?? [])]) fn(...args)
  }

  /** A message "from the kernel": what the views' stores listen to. */
  emit(msg, buffers = []) {
    this.fire('msg:custom', msg, buffers)
  }

  send(msg) {
    this.onSend(msg)
  }
}
