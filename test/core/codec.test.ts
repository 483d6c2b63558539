/**
 * The msgpack codec: what it encodes it decodes unchanged, and a length that the bytes
 * cannot hold is refused before msgpackr allocates for it (see checkAnnouncedLengths).
 */
import { decode, encode, mulberry32 } from '@ringtrain/core'
import { expect, test } from 'vitest'

/** A random value of the kinds control messages and headers hold, nested up to `depth`. */
function randomValue(next: () => number, depth: number): unknown {
  const kind = next() % (depth > 0 ? 9 : 7)
  switch (kind) {
    case 0: return next() % 300
    case 1: return -(next() % 70_000)
    case 2: return next() * 1e6 + 0.5
    case 3: return 'ß'.repeat(next() % 5) + 'x'.repeat(next() % 300)
    case 4: return Buffer.alloc(next() % 70, 7) // msgpackr gives binaries back as Buffers
    case 5: return null
    case 6: return next() % 2 === 0
    case 7: return Array.from({ length: next() % 20 }, () => randomValue(next, depth - 1))
    default: return Object.fromEntries(Array.from({ length: next() % 20 }, (_, i) => [`k${i}`, randomValue(next, depth - 1)]))
  }
}

test('decodes what it encodes, for nested values of every kind', () => {
  const next = mulberry32(7)
  for (let i = 0; i < 300; i++) {
    const value = randomValue(next, 3)
    expect(decode(encode(value))).toEqual(value)
  }
  const long = Array.from({ length: 70_000 }, (_, i) => i)
  expect(decode(encode({ long, text: 'y'.repeat(70_000) }))).toEqual({ long, text: 'y'.repeat(70_000) })
})

test('refuses at once a length that the bytes cannot hold, before allocating for it', () => {
  const hostile = [
    [0xdd, 0x01, 0xff, 0xff, 0xff, 0x01], // array32 of 33 554 431, one element present: 256 MiB and ~1 s in msgpackr
    [0x81, 0xa4, 0x74, 0x79, 0x70, 0x65, 0xdd, 0x01, 0xf0, 0x00, 0x00, 0x01], // the same inside a map
    [0xdc, 0xff, 0xff, 0x01], // array16 of 65 535
    [0xdf, 0x01, 0xff, 0xff, 0xff, 0xa1, 0x61, 0x01], // map32
    [0xdb, 0xff, 0xff, 0xff, 0xff, 0x41], // str32
    [0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00], // bin32
    [0xc9, 0xff, 0xff, 0xff, 0xff, 0x01], // ext32
    [0xdd, 0x00], // a truncated length field
  ]
  const started = performance.now()
  for (const bytes of hostile) expect(() => decode(new Uint8Array(bytes)), Buffer.from(bytes).toString('hex')).toThrow(RangeError)
  // msgpackr alone spends ~1 s on the first one; the check is a few microseconds each.
  expect(performance.now() - started).toBeLessThan(200)
})
