/**
 * ANSI colours for log lines, parsed by `anser` and rendered as DOM text nodes (never HTML).
 *
 *     appendAnsi(row, '\x1b[31mred\x1b[0m <b>not bold</b>')
 *     stripAnsi('\x1b[1mbold\x1b[0m')  // 'bold'
 *
 * The work per line is capped: a line is displayed up to MAX_CHARS characters and MAX_SPANS
 * styled runs; the rest is replaced by a marker, so an "ANSI bomb" costs no more than that.
 */
import Anser from 'anser'

export const MAX_CHARS = 10000
export const MAX_SPANS = 500

// C0 controls other than tab (escape leftovers, bell, backspace) would show as boxes.
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f]/g
const NAMES = ['black', 'red', 'green', 'yellow', 'blue', 'magenta', 'cyan', 'white']
const BASIC = /^ansi-(bright-)?([a-z]+)$/
const PALETTE = /^ansi-palette-(\d{1,3})$/
const RGB = /^\d{1,3}, ?\d{1,3}, ?\d{1,3}$/
const DECORATIONS = {
  bold: 'frw-b',
  dim: 'frw-dim',
  italic: 'frw-i',
  underline: 'frw-u',
  crossed: 'frw-s',
  hidden: 'frw-hide',
}

let palette = null
function paletteColor(n) {
  if (!palette) {
    const a = new Anser()
    a.setupPalette()
    palette = a.PALETTE_COLORS
  }
  return palette[n]
}

/** What a terminal would show of a line with carriage returns: the text after the last one. */
function lastFrame(text) {
  const cr = text.lastIndexOf('\r')
  return cr === -1 ? text : text.slice(cr + 1)
}

/** The part of `text` that is displayed, and how many characters were cut off. */
export function clip(text) {
  text = lastFrame(text)
  if (text.length <= MAX_CHARS) return { text, cut: 0 }
  return { text: text.slice(0, MAX_CHARS), cut: text.length - MAX_CHARS }
}

/** Plain text without escape sequences or control characters. */
export function stripAnsi(text) {
  if (text.includes('\x1b')) text = Anser.ansiToText(text)
  return text.replace(CONTROLS, '')
}

function colour(span, name, truecolor, prop) {
  if (!name) return
  const style = prop === 'fg' ? 'color' : 'backgroundColor'
  const basic = BASIC.exec(name)
  const n = basic ? NAMES.indexOf(basic[2]) : -1
  if (n >= 0) {
    // themed: the 16 basic colours are CSS variables (see theme.css)
    span.style[style] = `var(--frw-c${n + (basic[1] ? 8 : 0)})`
    return
  }
  let rgb = null
  const pal = PALETTE.exec(name)
  if (pal) rgb = paletteColor(Number(pal[1]))
  else if (name === 'ansi-truecolor') rgb = truecolor
  if (rgb && RGB.test(rgb)) span.style[style] = `rgb(${rgb})`
}

/** Append the displayed form of one log line to `parent` as text nodes and styled spans. */
export function appendAnsi(parent, raw) {
  const { text, cut } = clip(raw)
  if (!text.includes('\x1b')) {
    parent.append(text.replace(CONTROLS, ''))
  } else {
    const parts = Anser.ansiToJson(text, { json: true, remove_empty: true, use_classes: true })
    const n = Math.min(parts.length, MAX_SPANS)
    for (let i = 0; i < n; i++) {
      const part = parts[i]
      const content = part.content.replace(CONTROLS, '')
      if (!content) continue
      if (!part.fg && !part.bg && !part.decorations.length) {
        parent.append(content)
        continue
      }
      const span = document.createElement('span')
      span.textContent = content
      colour(span, part.fg, part.fg_truecolor, 'fg')
      colour(span, part.bg, part.bg_truecolor, 'bg')
      for (const d of part.decorations) if (DECORATIONS[d]) span.classList.add(DECORATIONS[d])
      parent.append(span)
    }
    if (parts.length > n) {
      let rest = ''
      for (let i = n; i < parts.length; i++) rest += parts[i].content
      parent.append(rest.replace(CONTROLS, ''))
    }
  }
  if (cut) {
    const marker = document.createElement('span')
    marker.className = 'frw-cut'
    marker.textContent = ` … ${cut.toLocaleString('en-US')} more characters not shown`
    parent.append(marker)
  }
}
