/**
 * Ring all-reduce (Patarasuk & Yuan; Gloo's AllreduceRing, Horovod, NCCL's ring).
 *
 * The exchange, for `worldSize` W ranks in a ring, rank r sending to rightPeer r+1 and
 * receiving from leftPeer r-1, the buffer cut into W chunks (see RingChunks):
 *  1. reduce-scatter, ring steps 0..W-2: rank r sends chunk r-g to the right and receives
 *     chunk r-g-1 from the left, adds it into its own copy, and sends that sum on at the
 *     next step. After W-1 steps rank r holds chunk r+1 reduced over all ranks: it owns it.
 *  2. the owner step (the last receive of 1.): the owner writes the sum, divided by W for an
 *     average, both into `data` and into its scratch, so every rank will hold its bytes.
 *  3. all-gather, ring steps W-1..2W-3: each rank sends the chunk it got (or owns) to the
 *     right; receivers copy it into `data` and forward the very bytes they received.
 * Every chunk is pipelined in segments: segment k of step g+1 leaves as soon as segment k
 * of step g is in, while later segments are still in flight, and the receive of the next
 * segment is posted before the current one is added. Tags carry the ring step g.
 *
 * Note [All-reduce buffer lifetimes]
 * A transport may hold a reference to sent bytes until the peer has them (Note [Transport
 * semantics]), so nothing we sent may change until we know the right peer has it.
 * - Reduce-scatter sends straight from `data`. Every chunk sent there (all but the owned
 *   one) comes back reduced in the all-gather, and that reduction includes what we sent,
 *   so the right peer has our bytes before we overwrite them or return.
 * - All-gather forwards the received Uint8Arrays, which nobody modifies.
 * - Received segments that are not forwarded (every reduce-scatter receive, the last
 *   all-gather step's) go back to the transport once read (Note [Releasing received
 *   buffers]); a forwarded one must not, since ZeroMQ may still be sending from it.
 * - The owned chunk is the one thing a peer may still be reading when we return, so it is
 *   sent from a scratch the caller never sees. The scratch is reused by the next call on
 *   this transport (ring-scratch.ts): that call writes segment k of it only after
 *   receiving segment k of its last reduce-scatter step, which depends on the right peer
 *   having sent segment k of its first step, which it does only after returning from this
 *   call, which it does only after receiving everything we sent in it. Calls on one
 *   transport are one at a time (Note [Transport semantics]: `recv` takes the next message
 *   from a peer, so two calls in flight would take each other's frames).
 */
import type { Transport } from '../transport/transport.js'
import { addInto, addIntoTwo } from './add-into.js'
import { CollectiveCall, bytesOf, checkSegmentBytes, mod, type CollectiveOptions } from './collective-call.js'
import { RingChunks, floatView } from './ring-chunks.js'
import { acquireScratch } from './ring-scratch.js'
import { RingReceiver } from './ring-receiver.js'

/**
 * Segment size when none is given. `ringtrain bench allreduce --workers 2 --sizes 16MiB`
 * on the shared 2-core dev box (load 6-10, 2025-11): 64 KiB 0.31, 256 KiB 0.51-0.84,
 * 1 MiB 0.26-0.75, 4 MiB 0.30 GB/s bus bandwidth. Noise dominates; 256 KiB was never worst.
 */
export const DEFAULT_SEGMENT_BYTES = 256 * 1024

export interface RingAllReduceOptions extends CollectiveOptions {
  /** Bytes per transport message (a multiple of 4). Small values exercise the pipeline in tests. */
  segmentBytes?: number
  /** Divide the sum by `worldSize` (multiply by its reciprocal, see `addIntoTwo`). */
  average?: boolean
}

/**
 * Sums (or averages) `data` element-wise across all ranks, in place, with a segmented ring.
 *
 * A synchronization point of the ring: it returns once this rank holds the result, which
 * needs every rank to have entered it (no global barrier beyond that). Every rank calls it
 * with the same `step`, `op`, `round`, length and `segmentBytes`, one call at a time per
 * transport. On return every rank's `data` holds bitwise-identical bytes, and `data` may be
 * reused at once. The call costs 2(W-1)/W × byteLength sent and received per rank.
 *
 * Rejects with `CollectiveTimeoutError` (E_TIMEOUT) when `timeoutMs` passes (the whole call,
 * in ms), naming the rank waited for and the phase; `RingAllReduceError` (E_CHUNK_SIZE) when
 * a peer's segment has another size (its length differs); transport errors as they come
 * (E_PEER_LOST, E_STALE_ROUND, E_TAG_MISMATCH, E_CLOSED); `ConfigError` for bad options.
 * On error `data` is unspecified (partly reduced): restore the last committed state and
 * re-rendezvous; do not reuse the transport.
 */
export async function ringAllReduce(transport: Transport, data: Float32Array, options: RingAllReduceOptions): Promise<void> {
  const call = new CollectiveCall(transport, 'allReduce', options)
  const segmentBytes = checkSegmentBytes('allReduce', options.segmentBytes ?? DEFAULT_SEGMENT_BYTES)
  const { rank, worldSize } = call
  if (worldSize === 1) return
  const chunks = new RingChunks(data.length, worldSize, segmentBytes / 4)
  const ring = new RingReceiver(call, chunks, mod(rank - 1, worldSize))
  const { scratch, release } = acquireScratch(transport, chunks.chunkLength(mod(rank + 1, worldSize)))
  let ok = false
  try {
    reduceScatterStart(call, chunks, data)
    await reduceScatter(call, chunks, ring, data, scratch, options.average ? 1 / worldSize : 1)
    await allGather(call, chunks, ring, data)
    await call.finish()
    ok = true
  } finally {
    release(ok)
  }
}

/** Ring step 0 of reduce-scatter: our own chunk, every segment at once, straight from `data`. */
function reduceScatterStart(call: CollectiveCall, chunks: RingChunks, data: Float32Array): void {
  const rightPeer = mod(call.rank + 1, call.worldSize)
  for (let segment = 0; segment < chunks.segmentCount(call.rank); segment++) {
    call.send(rightPeer, 0, segment, bytesOf(chunks.segmentOf(data, call.rank, segment)))
  }
}

async function reduceScatter(call: CollectiveCall, chunks: RingChunks, ring: RingReceiver, data: Float32Array, scratch: Float32Array, scale: number): Promise<void> {
  const { rank, worldSize } = call
  const rightPeer = mod(rank + 1, worldSize)
  let aligned: Float32Array | undefined
  const alignedScratch = () => (aligned ??= new Float32Array(chunks.segmentLength))
  for (let g = 0; g < worldSize - 1; g++) {
    const chunk = mod(rank - g - 1, worldSize)
    for (let segment = 0; segment < chunks.segmentCount(chunk); segment++) {
      const dst = chunks.segmentOf(data, chunk, segment)
      const received = await ring.receive(g, chunk, segment)
      const src = floatView(received, alignedScratch)
      if (g < worldSize - 2) {
        addInto(dst, src)
        call.send(rightPeer, g + 1, segment, bytesOf(dst))
      } else {
        const offset = chunks.segmentOffset(segment)
        const out = scratch.subarray(offset, offset + dst.length)
        addIntoTwo(dst, out, src, scale)
        call.send(rightPeer, g + 1, segment, bytesOf(out))
      }
      call.release(received)
    }
  }
}

async function allGather(call: CollectiveCall, chunks: RingChunks, ring: RingReceiver, data: Float32Array): Promise<void> {
  const { rank, worldSize } = call
  const rightPeer = mod(rank + 1, worldSize)
  const bytes = bytesOf(data)
  for (let g = worldSize - 1; g < 2 * worldSize - 2; g++) {
    const chunk = mod(rank - g - 1, worldSize)
    for (let segment = 0; segment < chunks.segmentCount(chunk); segment++) {
      const received = await ring.receive(g, chunk, segment)
      bytes.set(received, (chunks.chunkStart(chunk) + chunks.segmentOffset(segment)) * 4)
      if (g < 2 * worldSize - 3) call.send(rightPeer, g + 1, segment, received)
      else call.release(received)
    }
  }
}
