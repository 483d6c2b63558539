/**
 * All-gather of one block per rank, blocks of any length, around the ring:
 *  1. ring step 0: every rank sends a copy of its own block to its right peer;
 *  2. ring steps 0..W-2: every rank receives from its left peer the block of rank r-g-1,
 *     keeps a copy, and forwards the received bytes themselves to its right peer, except at
 *     the last step (that block's owner is the right peer).
 * Each block travels as one message: all-gather is for small per-rank facts (layout
 * hashes, sample counts, metrics), not for gradients, which go through `ringAllReduce`.
 * Our own block is sent from a copy: nothing proves the last rank has it when we return.
 */
import { FrameError } from '../errors.js'
import type { Transport } from '../transport/transport.js'
import { CollectiveCall, bytesOf, mod, type CollectiveOptions } from './collective-call.js'

/**
 * Returns every rank's `data`, indexed by rank: `result[rank]` is a copy of this rank's
 * own `data`. Lengths may differ between ranks. Every returned array is a fresh copy that
 * the caller owns.
 *
 * A synchronization point: a rank returns once it holds every rank's block, so every rank
 * has entered the call. Rejects with `CollectiveTimeoutError` (E_TIMEOUT) when `timeoutMs`
 * (whole call, ms) passes, naming the rank waited for; `FrameError` (E_CHUNK_SIZE) when a
 * block is not whole float32; transport errors as they come.
 */
export async function allGather(transport: Transport, data: Float32Array, options: CollectiveOptions): Promise<Float32Array[]> {
  const call = new CollectiveCall(transport, 'allGather', options)
  const { rank, worldSize } = call
  const result = new Array<Float32Array>(worldSize)
  result[rank] = data.slice()
  if (worldSize === 1) return result
  const leftPeer = mod(rank - 1, worldSize)
  const rightPeer = mod(rank + 1, worldSize)
  call.send(rightPeer, 0, 0, bytesOf(data.slice()))
  const steps = worldSize - 1
  let next = call.receive(leftPeer, 0, 0, () => `ring step 1 of ${steps}`)
  for (let g = 0; g < steps; g++) {
    const current = next
    if (g + 1 < steps) next = call.receive(leftPeer, g + 1, 0, () => `ring step ${g + 2} of ${steps}`)
    call.waitingIn(`ring step ${g}`, leftPeer, () => `ring step ${g + 1} of ${steps}, from rank ${leftPeer}`)
    const received = await current
    const owner = mod(rank - g - 1, worldSize)
    call.checkByteLength(received, received.byteLength - (received.byteLength % 4), leftPeer, `the block of rank ${owner}`,
      'A block must be whole float32.', FrameError)
    const block = new Float32Array(received.byteLength / 4)
    bytesOf(block).set(received)
    result[owner] = block
    if (g + 1 < steps) call.send(rightPeer, g + 1, 0, received)
    else call.release(received)
  }
  await call.finish()
  return result
}
