/**
 * Validation at the edge of the ZeroMQ transport: every message the ROUTER receives passes
 * through `checkFrames` before anything reaches an inbox. A bad frame becomes a typed
 * `FrameError` for the peer it came from; it never throws out of the receive loop.
 */
import { FrameError } from '../errors.js'
import { decodeFrameHeader } from '../protocol/frame-header.js'
import { PROTOCOL_VERSION } from '../protocol/version.js'
import { formatTag, type Tag } from './transport.js'

const HEADER_SHAPE = 'a msgpack [version, from, round, step, op, collective, ringStep, segment, byteLength] of non-negative integers'

export type CheckedFrames =
  | { kind: 'message'; peer: number; tag: Tag; bytes: Uint8Array }
  | { kind: 'error'; peer: number; error: FrameError }
  | { kind: 'drop'; reason: string }

/**
 * Maps a ROUTER message `[routingId, header, payload]` to a message or an error for the
 * peer named by the routing id (set by that peer's DEALER, see zeromq.ts). Frames from a
 * routing id that is not a rank of this world are dropped with a reason.
 */
export function checkFrames(rank: number, worldSize: number, frames: Buffer[]): CheckedFrames {
  const routingId = frames[0]?.toString('latin1') ?? ''
  const peer = /^(0|[1-9]\d{0,5})$/.test(routingId) ? Number(routingId) : -1
  if (peer < 0 || peer >= worldSize || peer === rank) {
    return { kind: 'drop', reason: `dropped a message of ${frames.length - 1} frames from unknown routing id ${JSON.stringify(routingId)}; expected the rank of a peer in [0, ${worldSize}) other than ${rank}.` }
  }
  const context = { rank, peer }
  if (frames.length !== 3) {
    return bad(peer, 'E_BAD_FRAME', `rank ${rank} got a message of ${frames.length - 1} frames from rank ${peer}; expected 2 frames [header, payload]. Dropped it.`, { ...context, expected: 2, got: frames.length - 1 })
  }
  const header = frames[1]!
  const payload = frames[2]!
  let decoded: ReturnType<typeof decodeFrameHeader>
  try {
    decoded = decodeFrameHeader(header, rank)
  } catch (cause) {
    const error = cause instanceof FrameError ? cause : undefined
    if (error?.code === 'E_PROTOCOL_VERSION') {
      const got = error.context.got
      return bad(peer, 'E_PROTOCOL_VERSION', `rank ${rank} got a frame of protocol version ${String(got)} from rank ${peer}; expected version ${PROTOCOL_VERSION}. Run the same ringtrain version on every worker.`, { ...context, expected: PROTOCOL_VERSION, got }, cause)
    }
    return bad(peer, 'E_BAD_FRAME', `rank ${rank} got a bad frame header from rank ${peer}: expected ${HEADER_SHAPE}, got ${describeHeader(header)}. Dropped it.`, { ...context, expected: HEADER_SHAPE, got: describeHeader(header) }, cause)
  }
  const tag: Tag = { round: decoded.round, step: decoded.step, op: decoded.op, collective: decoded.collective, ringStep: decoded.ringStep, segment: decoded.segment }
  if (decoded.from !== peer) {
    return bad(peer, 'E_BAD_FRAME', `rank ${rank} got a frame from rank ${peer} whose header says it is from rank ${decoded.from} (${formatTag(tag)}); expected from ${peer}, got ${decoded.from}. Dropped it.`, { ...context, expected: peer, got: decoded.from })
  }
  if (decoded.byteLength !== payload.byteLength) {
    return bad(peer, 'E_BAD_FRAME', `rank ${rank} got a payload of ${payload.byteLength} bytes from rank ${peer} whose header announced ${decoded.byteLength} bytes (${formatTag(tag)}); expected ${decoded.byteLength}, got ${payload.byteLength}. Dropped it.`, { ...context, round: tag.round, step: tag.step, op: tag.op, expected: decoded.byteLength, got: payload.byteLength })
  }
  // A plain Uint8Array view of ZeroMQ's buffer (no copy), as InProcessTransport hands out.
  return { kind: 'message', peer, tag, bytes: new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength) }
}

function bad(peer: number, code: 'E_BAD_FRAME' | 'E_PROTOCOL_VERSION', message: string, context: Record<string, unknown>, cause?: unknown): CheckedFrames {
  return { kind: 'error', peer, error: new FrameError(code, message, context, cause === undefined ? undefined : { cause }) }
}

/** `5 bytes 0x68656c6c6f`, the first 16 bytes in hex. */
function describeHeader(header: Uint8Array): string {
  const hex = Buffer.from(header.buffer, header.byteOffset, Math.min(16, header.byteLength)).toString('hex')
  return `${header.byteLength} bytes 0x${hex}${header.byteLength > 16 ? '…' : ''}`
}
