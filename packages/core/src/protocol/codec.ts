/**
 * The only file that imports msgpackr. Headers and control messages are msgpack; bulk
 * floats never pass through here (they travel as raw frames).
 */
import { Packr, Unpackr } from 'msgpackr'

const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false })
const unpackr = new Unpackr({ useRecords: false, moreTypes: false, bundleStrings: false })

export function encode(value: unknown): Uint8Array {
  return packr.pack(value)
}

/** Throws whatever msgpackr throws on malformed input; callers wrap it in a typed error. */
export function decode(bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes)
}
