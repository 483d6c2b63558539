/**
 * Broadcast over a pipelined chain: root → root+1 → … → root-1 (the ring without the link
 * into the root). Bandwidth-optimal for large buffers, which is what we broadcast (model
 * and optimizer state to a joining worker); a tree would win only for tiny ones.
 *
 * The exchange, in segments of `segmentBytes`:
 *  1. the root copies `data` once and sends every segment of the copy to root+1;
 *  2. every other rank receives segment k from its left peer, copies it into `data`, and
 *     forwards the received bytes themselves to its right peer (unless it ends the chain).
 * The root sends from a copy because nothing comes back to it: it cannot know when the
 * last rank has its bytes (Note [Transport semantics]), and the caller may overwrite `data`
 * as soon as the call returns.
 */
import { ConfigError, FrameError } from '../errors.js'
import type { Transport } from '../transport/transport.js'
import { CollectiveCall, bytesOf, checkSegmentBytes, mod, type CollectiveOptions } from './collective-call.js'
import { DEFAULT_SEGMENT_BYTES } from './ring-all-reduce.js'

export interface BroadcastOptions extends CollectiveOptions {
  /** The rank whose bytes everyone receives. */
  root: number
  /** Bytes per transport message (a multiple of 4). */
  segmentBytes?: number
}

/**
 * Copies the root's `data` into every rank's `data`, bitwise. Every rank passes a buffer
 * of the same length.
 *
 * Not a full synchronization point: the root returns once its sends are queued, without
 * waiting for anyone; other ranks return when they hold all bytes (they need the ranks
 * before them in the chain). `data` may be reused at once on every rank.
 *
 * Rejects with `CollectiveTimeoutError` (E_TIMEOUT) when `timeoutMs` (whole call, ms)
 * passes, naming the rank waited for; `FrameError` (E_CHUNK_SIZE) when a segment has
 * another size (the lengths differ); transport errors as they come; `ConfigError` for a
 * root outside the world. On error `data` is unspecified on non-root ranks.
 */
export async function broadcast(transport: Transport, data: Float32Array, options: BroadcastOptions): Promise<void> {
  const call = new CollectiveCall(transport, 'broadcast', options)
  const segmentLength = checkSegmentBytes('broadcast', options.segmentBytes ?? DEFAULT_SEGMENT_BYTES) / 4
  const { rank, worldSize } = call
  const { root } = options
  if (!Number.isInteger(root) || root < 0 || root >= worldSize) {
    throw new ConfigError(`The root of broadcast op ${options.op} (${root}) must be a rank in [0, ${worldSize}).`, { op: options.op, got: root })
  }
  if (worldSize === 1) return
  const position = mod(rank - root, worldSize)
  const leftPeer = mod(rank - 1, worldSize)
  const rightPeer = mod(rank + 1, worldSize)
  const segmentCount = Math.max(1, Math.ceil(data.length / segmentLength))
  const bytes = bytesOf(data)
  const segmentBytesOf = (segment: number) => bytes.subarray(segment * segmentLength * 4, (segment + 1) * segmentLength * 4)

  if (position === 0) {
    const copy = bytes.slice()
    for (let segment = 0; segment < segmentCount; segment++) {
      call.send(rightPeer, 0, segment, copy.subarray(segment * segmentLength * 4, (segment + 1) * segmentLength * 4))
    }
    await call.finish()
    return
  }
  const phase = (segment: number) => () => `from root ${root}, segment ${segment + 1} of ${segmentCount}`
  let next = call.receive(leftPeer, 0, 0, phase(0))
  for (let segment = 0; segment < segmentCount; segment++) {
    const current = next
    if (segment + 1 < segmentCount) next = call.receive(leftPeer, 0, segment + 1, phase(segment + 1))
    const received = await current
    const target = segmentBytesOf(segment)
    const what = segmentCount > 1 ? `segment ${segment} of ${segmentCount}` : 'the buffer'
    call.checkByteLength(received, target.byteLength, leftPeer, what,
      `The ranks broadcast buffers of different lengths: compare the lengths on ranks ${root} and ${rank}.`, FrameError)
    target.set(received)
    if (position < worldSize - 1) call.send(rightPeer, 0, segment, received)
    else call.release(received)
  }
  await call.finish()
}
