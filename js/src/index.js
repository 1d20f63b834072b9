/**
 * The anywidget front-end module of flyte-run-widget.
 *
 * initialize() runs once per widget model and keeps the log buffers there, so every view of the
 * model (the same output shown twice, a re-rendered cell) shares them; render() draws one view.
 */
import './theme.css'
import { openSigned } from './page_link.js'
import { attachStore } from './store.js'
import { renderSignIn, renderWidget } from './widget.js'

export default {
  initialize({ model }) {
    if (model.get('view') === 'sign_in') return undefined
    const store = attachStore(model)
    return () => store.dispose()
  },
  render({ model, el }) {
    if (model.get('view') === 'sign_in') return renderSignIn({ model, el })
    return renderWidget({ model, el, env: { openLink: (url, event) => openSigned(model, url, event) } })
  },
}
