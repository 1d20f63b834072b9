/**
 * A log batch as the kernel sends it: the message names `count`; its four buffers are columns.
 *
 *     const b = decodeBatch(msg.count, buffers)   // -> { count, text, offsets, ts, origin, line(i) } or null
 *
 * - buffers[0]: the UTF-8 text of every line, concatenated, decoded once into one string;
 * - buffers[1]: count + 1 Uint32 offsets (little-endian) into that string, in UTF-16 code units;
 * - buffers[2]: count Float64 timestamps (epoch ms); buffers[3]: count Uint8 originators.
 *
 * Buffers may arrive as DataView, ArrayBuffer, typed arrays or base64 text (the text transport,
 * outbox.js, and hosts that pass buffers on as JSON). A malformed batch (short columns,
 * offsets out of order or past the text) decodes as null and is ignored.
 */
const decoder = new TextDecoder('utf-8') // invalid sequences become U+FFFD

export function bytes(b) {
  if (typeof b === 'string') {
    try {
      return Uint8Array.from(atob(b), (c) => c.charCodeAt(0))
    } catch {
      return null
    }
  }
  if (b instanceof ArrayBuffer) return new Uint8Array(b)
  if (b && ArrayBuffer.isView(b)) return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
  return null
}

/** A little-endian column of `count` items of `size` bytes, copied if misaligned. */
function column(b, Type, count) {
  const u8 = bytes(b)
  const size = Type.BYTES_PER_ELEMENT
  if (!u8 || u8.byteLength < count * size) return null
  if (u8.byteOffset % size === 0) return new Type(u8.buffer, u8.byteOffset, count)
  return new Type(u8.slice(0, count * size).buffer)
}

export function decodeBatch(count, buffers) {
  if (!Number.isInteger(count) || count < 0 || !Array.isArray(buffers) || buffers.length < 4) return null
  const data = bytes(buffers[0])
  const offsets = column(buffers[1], Uint32Array, count + 1)
  const ts = column(buffers[2], Float64Array, count)
  const origin = column(buffers[3], Uint8Array, count)
  if (!data || !offsets || !ts || !origin) return null
  const text = decoder.decode(data)
  if (offsets[0] !== 0 || offsets[count] > text.length) return null
  for (let i = 0; i < count; i++) if (offsets[i + 1] < offsets[i]) return null
  return { count, ts, origin, text, offsets, line: (i) => text.slice(offsets[i], offsets[i + 1]) }
}
