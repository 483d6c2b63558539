/**
 * Broadcast over a pipelined chain: root → root+1 → … → root-1 (the ring without the link
 * into the root). Bandwidth-optimal for large buffers, which is what we broadcast (model
 * and optimizer state to a joining worker); a tree would win only for tiny ones.
 *
 * The exchange, in segments of `segmentBytes`:
 *  1. the root copies its bytes once and sends every segment of the copy to root+1;
 *  2. every other rank receives segment k from its left peer, copies it into its buffer,
 *     and forwards the received bytes themselves to its right peer (unless it ends the
 *     chain).
 * The root sends from a copy because nothing comes back to it: it cannot know when the
 * last rank has its bytes (Note [Transport semantics]), and the caller may overwrite its
 * buffer as soon as the call returns.
 *
 * `broadcast` fills buffers of a length every rank knows (weights, buffers). `broadcastBytes`
 * carries bytes of a length only the root knows (an encoded record): ring step 0 carries
 * the length (4 bytes, little-endian), ring step 1 the segments.
 */
import { ConfigError, FrameError, invariant } from '../errors.js'
import type { Transport } from '../transport/transport.js'
import { CollectiveCall, checkSegmentBytes, mod, type CollectiveOptions } from './collective-call.js'
import { DEFAULT_SEGMENT_BYTES } from './ring-all-reduce.js'

export interface BroadcastOptions extends CollectiveOptions {
  /** The rank whose bytes everyone receives. */
  root: number
  /** Bytes per transport message (a multiple of 4). */
  segmentBytes?: number
}

/** Largest length `broadcastBytes` accepts from a root, unless `maxByteLength` says otherwise. */
export const DEFAULT_MAX_BROADCAST_BYTES = 256 * 1024 * 1024

/**
 * Copies the root's `data` into every rank's `data`, bitwise. Every rank passes a buffer
 * of the same byte length (float32 weights, or any bytes).
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
export async function broadcast(transport: Transport, data: Float32Array | Uint8Array, options: BroadcastOptions): Promise<void> {
  const chain = new Chain(transport, options)
  if (chain.worldSize === 1) return
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  if (chain.isRoot) chain.sendSegments(1, bytes.slice())
  else await chain.relaySegments(1, bytes)
  await chain.call.finish()
}

/**
 * The root's `bytes` on every rank, as a fresh array each rank owns (the root gets a copy
 * of its own). Other ranks pass `undefined`: they learn the length from the root, and
 * refuse one over `maxByteLength` (default DEFAULT_MAX_BROADCAST_BYTES) with a
 * `FrameError` (E_FRAME_TOO_LARGE) before allocating anything. Otherwise as `broadcast`.
 */
export async function broadcastBytes(
  transport: Transport,
  bytes: Uint8Array | undefined,
  options: BroadcastOptions & { maxByteLength?: number },
): Promise<Uint8Array> {
  const chain = new Chain(transport, options)
  if (chain.isRoot) {
    invariant(bytes !== undefined, `the root of broadcast op ${options.op} passed no bytes`)
    const copy = bytes.slice()
    if (chain.worldSize === 1) return copy
    const length = new Uint8Array(4)
    new DataView(length.buffer).setUint32(0, copy.byteLength, true)
    chain.call.send(chain.rightPeer, 0, 0, length)
    chain.sendSegments(1, copy)
    await chain.call.finish()
    return copy
  }
  chain.call.waitingIn('length', chain.leftPeer, () => `the length, from root ${chain.root} via rank ${chain.leftPeer}`)
  const length = await chain.call.receive(chain.leftPeer, 0, 0, () => `the length, from root ${chain.root}`)
  chain.call.checkByteLength(length, 4, chain.leftPeer, 'the length', `The ranks run different collectives as op ${options.op}.`, FrameError)
  const byteLength = new DataView(length.buffer, length.byteOffset, 4).getUint32(0, true)
  const limit = options.maxByteLength ?? DEFAULT_MAX_BROADCAST_BYTES
  if (byteLength > limit) {
    throw new FrameError('E_FRAME_TOO_LARGE', `rank ${chain.call.rank} was sent ${byteLength} bytes by root ${chain.root} in broadcast op ${options.op} at step ${options.step}; at most ${limit} bytes are accepted.`, { rank: chain.call.rank, peer: chain.leftPeer, op: options.op, step: options.step, expected: limit, got: byteLength })
  }
  if (!chain.isLast) chain.call.send(chain.rightPeer, 0, 0, length)
  else chain.call.release(length)
  const out = new Uint8Array(byteLength)
  await chain.relaySegments(1, out)
  await chain.call.finish()
  return out
}

/** One broadcast call: the root, this rank's place in the chain, and the segment loops. */
class Chain {
  readonly call: CollectiveCall
  readonly worldSize: number
  readonly root: number
  readonly isRoot: boolean
  /** Whether this rank ends the chain (root − 1): it forwards nothing. */
  readonly isLast: boolean
  readonly leftPeer: number
  readonly rightPeer: number
  private readonly segmentBytes: number

  constructor(transport: Transport, options: BroadcastOptions) {
    this.call = new CollectiveCall(transport, 'broadcast', options)
    this.segmentBytes = checkSegmentBytes('broadcast', options.segmentBytes ?? DEFAULT_SEGMENT_BYTES)
    const { rank, worldSize } = this.call
    const { root } = options
    if (!Number.isInteger(root) || root < 0 || root >= worldSize) {
      throw new ConfigError(`The root of broadcast op ${options.op} (${root}) must be a rank in [0, ${worldSize}).`, { op: options.op, got: root })
    }
    this.worldSize = worldSize
    this.root = root
    const position = mod(rank - root, worldSize)
    this.isRoot = position === 0
    this.isLast = position === worldSize - 1
    this.leftPeer = mod(rank - 1, worldSize)
    this.rightPeer = mod(rank + 1, worldSize)
  }

  private segmentCount(byteLength: number): number {
    return Math.max(1, Math.ceil(byteLength / this.segmentBytes))
  }

  private segmentOf(bytes: Uint8Array, segment: number): Uint8Array {
    return bytes.subarray(segment * this.segmentBytes, (segment + 1) * this.segmentBytes)
  }

  /** The root: every segment of `copy` (which nobody modifies) to the right peer. */
  sendSegments(ringStep: number, copy: Uint8Array): void {
    for (let segment = 0; segment < this.segmentCount(copy.byteLength); segment++) {
      this.call.send(this.rightPeer, ringStep, segment, this.segmentOf(copy, segment))
    }
  }

  /** Every other rank: each segment into `target`, forwarded on unless this rank ends the chain. */
  async relaySegments(ringStep: number, target: Uint8Array): Promise<void> {
    const { call, root } = this
    const count = this.segmentCount(target.byteLength)
    const phase = (segment: number) => () => `from root ${root}, segment ${segment + 1} of ${count}`
    let next = call.receive(this.leftPeer, ringStep, 0, phase(0))
    for (let segment = 0; segment < count; segment++) {
      const current = next
      if (segment + 1 < count) next = call.receive(this.leftPeer, ringStep, segment + 1, phase(segment + 1))
      call.waitingIn('segments', this.leftPeer, () => `the ${count} segment(s) from root ${root} via rank ${this.leftPeer}`)
      const received = await current
      const slice = this.segmentOf(target, segment)
      const what = count > 1 ? `segment ${segment} of ${count}` : 'the buffer'
      call.checkByteLength(received, slice.byteLength, this.leftPeer, what,
        `The ranks broadcast buffers of different lengths: compare the lengths on ranks ${root} and ${call.rank}.`, FrameError)
      slice.set(received)
      if (!this.isLast) call.send(this.rightPeer, ringStep, segment, received)
      else call.release(received)
    }
  }
}
