/**
 * A dissemination barrier (Hensgen, Finkel & Manber): in round i = 0..⌈log2 W⌉-1, rank r
 * sends an empty message to rank r+2^i and waits for one from rank r-2^i. After the last
 * round every rank has heard, directly or through others, from every rank, in ⌈log2 W⌉
 * message latencies instead of the ring's W-1.
 */
import { FrameError } from '../errors.js'
import type { Transport } from '../transport/transport.js'
import { CollectiveCall, mod, type CollectiveOptions } from './collective-call.js'

/**
 * Returns once every rank has entered the barrier with the same `step` and `op`: a
 * synchronization point, and nothing more (no data, no ordering of what ranks do after).
 *
 * Rejects with `CollectiveTimeoutError` (E_TIMEOUT) when `timeoutMs` (whole call, ms)
 * passes, naming the rank waited for and the round; transport errors as they come
 * (E_PEER_LOST, E_STALE_ROUND, E_TAG_MISMATCH, E_CLOSED).
 */
export async function barrier(transport: Transport, options: CollectiveOptions): Promise<void> {
  const call = new CollectiveCall(transport, 'barrier', options)
  const { rank, worldSize } = call
  const rounds = Math.ceil(Math.log2(worldSize))
  const empty = new Uint8Array(0)
  for (let i = 0; i < rounds; i++) {
    const distance = 2 ** i
    const from = mod(rank - distance, worldSize)
    call.send(mod(rank + distance, worldSize), i, 0, empty)
    const phase = () => `round ${i + 1} of ${rounds}`
    call.waitingIn(`round ${i}`, from, phase)
    const received = await call.receive(from, i, 0, phase)
    call.checkByteLength(received, 0, from, `round ${i + 1}`, 'Barrier messages are empty: the ranks run different collectives.', FrameError)
  }
  await call.finish()
}
