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

/**
 * Throws whatever msgpackr throws on malformed input, or a RangeError for a length that the
 * bytes cannot hold (see checkAnnouncedLengths); callers wrap it in a typed error.
 */
export function decode(bytes: Uint8Array): unknown {
  checkAnnouncedLengths(bytes)
  return unpackr.unpack(bytes)
}

/**
 * msgpack announces the length of every array, map, string and binary before its contents,
 * and msgpackr allocates an array of the announced length before it reads one element: the
 * 6 bytes `dd 01 ff ff ff 01` (an array of 33 554 431 elements, one present) cost it about
 * 1 s and 256 MiB before it finds the data missing. Any client holding the job's key could
 * stall the coordinator so until the workers' heartbeats ran out. This walks the tokens
 * first (msgpack nests by sequence, so one linear pass meets every header msgpackr reads)
 * and refuses a length that the bytes left cannot hold: every element takes a byte or more.
 */
function checkAnnouncedLengths(bytes: Uint8Array): void {
  const end = bytes.byteLength
  let p = 0
  /** The big-endian unsigned integer of `size` bytes at p (a length field), then past it. */
  const field = (size: number): number => {
    if (p + size > end) throw new RangeError(`msgpack data ends inside a ${size}-byte length field at byte ${p}.`)
    let value = 0
    for (let i = 0; i < size; i++) value = value * 256 + bytes[p + i]!
    p += size
    return value
  }
  while (p < end) {
    const at = p
    const token = bytes[p++]!
    let elements = 0 // values that follow (a map's keys and values both count)
    let skip = 0 // bytes of payload that follow
    if (token <= 0x7f || token >= 0xe0 || (token >= 0xc0 && token <= 0xc3)) continue
    if (token <= 0x8f) elements = 2 * (token & 0x0f)
    else if (token <= 0x9f) elements = token & 0x0f
    else if (token <= 0xbf) skip = token & 0x1f
    else if (token === 0xc4 || token === 0xd9) skip = field(1)
    else if (token === 0xc5 || token === 0xda) skip = field(2)
    else if (token === 0xc6 || token === 0xdb) skip = field(4)
    else if (token >= 0xc7 && token <= 0xc9) skip = field(2 ** (token - 0xc7)) + 1 // ext 8/16/32: length, then a type byte
    else if (token >= 0xca && token <= 0xd3) skip = [4, 8, 1, 2, 4, 8, 1, 2, 4, 8][token - 0xca]!
    else if (token >= 0xd4 && token <= 0xd8) skip = 1 + 2 ** (token - 0xd4) // fixext: a type byte and 1-16 bytes
    else if (token === 0xdc) elements = field(2)
    else if (token === 0xdd) elements = field(4)
    else if (token === 0xde) elements = 2 * field(2)
    else if (token === 0xdf) elements = 2 * field(4)
    const left = end - p
    if (elements > left || skip > left) {
      throw new RangeError(`msgpack value at byte ${at} announces ${elements > 0 ? `${elements} elements` : `${skip} bytes`}, but only ${left} bytes follow.`)
    }
    p += skip
  }
}
