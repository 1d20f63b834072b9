/**
 * The anywidget module of the runs table (flyte_run_widget/notebook/runs_table.py): its own small
 * bundle, static/runs_table.{js,css}, so a notebook with only run widgets never loads it.
 */
import './theme.css'
import './runs_table.css'
import { attachRowStore, findRowStore } from './run_rows.js'
import { TableView } from './table_view.js'

export default {
  initialize({ model }) {
    const store = attachRowStore(model)
    return () => store.dispose()
  },
  render({ model, el }) {
    const owns = !findRowStore(model)
    const store = attachRowStore(model)
    const view = new TableView({ model, store })
    el.append(view.el)
    return () => {
      view.destroy()
      if (owns) store.dispose()
    }
  },
}
