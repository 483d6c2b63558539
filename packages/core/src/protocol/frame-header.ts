/**
 * The header frame of a data-plane message: `[header, payload]`, where payload is raw bytes
 * (float32 for gradients) and the header is msgpack.
 */
import { FrameError } from '../errors.js'
import type { Tag } from '../transport/transport.js'
import { decode, encode } from './codec.js'
import { PROTOCOL_VERSION } from './version.js'

export interface FrameHeader extends Tag {
  /** PROTOCOL_VERSION of the sender. */
  v: number
  /** Rank of the sender. */
  from: number
  /** byteLength of the payload frame. */
  byteLength: number
}

export function encodeFrameHeader(from: number, tag: Tag, byteLength: number): Uint8Array {
  return encode([PROTOCOL_VERSION, from, tag.round, tag.step, tag.op, tag.collective, tag.ringStep, tag.segment, byteLength])
}

/**
 * Decodes and validates a header. Throws a `FrameError` with code E_BAD_FRAME for bytes
 * that are not a header, or E_PROTOCOL_VERSION for another protocol version.
 * `receiver` is the receiving rank, for the message.
 */
export function decodeFrameHeader(bytes: Uint8Array, receiver: number): FrameHeader {
  let value: unknown
  try {
    value = decode(bytes)
  } catch (cause) {
    throw new FrameError('E_BAD_FRAME', `rank ${receiver} got a frame header of ${bytes.byteLength} bytes that is not valid msgpack; dropped it.`, { rank: receiver, got: bytes.byteLength }, { cause })
  }
  if (!Array.isArray(value) || value.length !== 9 || !value.every((x) => Number.isInteger(x) && x >= 0)) {
    throw new FrameError('E_BAD_FRAME', `rank ${receiver} got a frame header that is not [version, from, round, step, op, collective, ringStep, segment, byteLength] of non-negative integers; dropped it.`, { rank: receiver })
  }
  const [v, from, round, step, op, collective, ringStep, segment, byteLength] = value as number[]
  if (v !== PROTOCOL_VERSION) {
    throw new FrameError('E_PROTOCOL_VERSION', `rank ${receiver} got a frame of protocol version ${v} from rank ${from}; expected version ${PROTOCOL_VERSION}. Run the same ringtrain version on every worker.`, { rank: receiver, peer: from, expected: PROTOCOL_VERSION, got: v })
  }
  return { v: v!, from: from!, round: round!, step: step!, op: op!, collective: collective!, ringStep: ringStep!, segment: segment!, byteLength: byteLength! }
}
