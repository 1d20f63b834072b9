/**
 * A tiny element builder. Text goes in as text nodes only: there is no way to pass HTML.
 *
 *     h('button', { class: 'frw-btn', type: 'button', onclick: go }, 'Abort')
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue
    if (key === 'class') el.className = value
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value)
    else el.setAttribute(key, value === true ? '' : String(value))
  }
  for (const child of children) if (child !== null && child !== undefined) el.append(child)
  return el
}

/** `url` if it is an absolute http(s) URL, else null: nothing else may become a link. */
export function safeHttpUrl(url) {
  if (typeof url !== 'string' || !/^https?:\/\//i.test(url.trim())) return null
  try {
    const parsed = new URL(url.trim())
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null
  } catch {
    return null
  }
}

export function show(el, visible) {
  el.hidden = !visible
}

// One formatter for every count: toLocaleString() builds a new one per call (ICU), and counts
// are redrawn in every frame while lines stream in.
const COUNT_FORMAT = new Intl.NumberFormat('en-US')

export function formatCount(n) {
  return COUNT_FORMAT.format(Number(n))
}
