import { describe, expect, it } from 'vitest'
import { appendAnsi, clip, MAX_CHARS, stripAnsi } from '../src/ansi.js'

const render = (text) => {
  const row = document.createElement('div')
  appendAnsi(row, text)
  return row
}

describe('ansi', () => {
  it('renders plain text as one text node', () => {
    const row = render('hello <b>')
    expect(row.childNodes).toHaveLength(1)
    expect(row.textContent).toBe('hello <b>')
  })

  it('renders foreground, background and bold', () => {
    const row = render('a \x1b[1;31mred\x1b[0m \x1b[42mgreen bg\x1b[0m \x1b[94mbright\x1b[0m')
    const spans = row.querySelectorAll('span')
    expect(row.textContent).toBe('a red green bg bright')
    expect(spans[0].textContent).toBe('red')
    expect(spans[0].classList.contains('frw-b')).toBe(true)
    expect(spans[0].getAttribute('style')).toContain('var(--frw-c1)')
    expect(spans[1].getAttribute('style')).toContain('var(--frw-c2)')
    expect(spans[2].getAttribute('style')).toContain('var(--frw-c12)')
  })

  it('renders 256-colour and truecolor as rgb', () => {
    const row = render('\x1b[38;5;208mo\x1b[0m\x1b[38;2;10;20;30mt\x1b[0m\x1b[32mg\x1b[0m')
    const spans = row.querySelectorAll('span')
    expect(spans[0].style.color).toMatch(/rgb\(255, ?135, ?0\)/)
    expect(spans[1].style.color).toMatch(/rgb\(10, ?20, ?30\)/)
    expect(spans[2].getAttribute('style')).toContain('var(--frw-c2)') // no leftover truecolor
  })

  it('drops control characters and shows the last carriage-return frame', () => {
    expect(render('a\x07b\x00c').textContent).toBe('abc')
    expect(render('10%\r50%\r100%').textContent).toBe('100%')
  })

  it('clips long lines and says so', () => {
    const { text, cut } = clip('x'.repeat(MAX_CHARS + 5))
    expect(text).toHaveLength(MAX_CHARS)
    expect(cut).toBe(5)
  })

  it('strips escapes for copy, download and filtering', () => {
    expect(stripAnsi('\x1b[1;31mred\x1b[0m plain')).toBe('red plain')
    expect(stripAnsi('plain')).toBe('plain')
  })
})
