/**
 * Z85 (ZeroMQ RFC 32): the text form of CURVE keys that ZeroMQ's socket options take.
 * Four bytes become five characters from an 85-character alphabet; lengths must be
 * multiples of 4 (bytes) and 5 (characters).
 */
const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#'
const VALUES = new Map([...ALPHABET].map((c, i) => [c, i]))

export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) throw new RangeError(`Z85 encodes multiples of 4 bytes; got ${bytes.length}.`)
  let out = ''
  for (let i = 0; i < bytes.length; i += 4) {
    let value = ((bytes[i]! << 24) >>> 0) + (bytes[i + 1]! << 16) + (bytes[i + 2]! << 8) + bytes[i + 3]!
    let chunk = ''
    for (let j = 0; j < 5; j++) {
      chunk = ALPHABET[value % 85]! + chunk
      value = Math.floor(value / 85)
    }
    out += chunk
  }
  return out
}

/** The bytes of a Z85 string, or undefined when it is not valid Z85. */
export function z85Decode(text: string): Uint8Array | undefined {
  if (text.length % 5 !== 0) return undefined
  const out = new Uint8Array((text.length / 5) * 4)
  for (let i = 0, o = 0; i < text.length; i += 5, o += 4) {
    let value = 0
    for (let j = 0; j < 5; j++) {
      const digit = VALUES.get(text[i + j]!)
      if (digit === undefined) return undefined
      value = value * 85 + digit
    }
    if (value > 0xffffffff) return undefined
    out[o] = value >>> 24
    out[o + 1] = (value >>> 16) & 0xff
    out[o + 2] = (value >>> 8) & 0xff
    out[o + 3] = value & 0xff
  }
  return out
}
