/**
 * The buffer a ring all-reduce sends its reduced chunk from, one per transport and reused
 * across calls. See Note [All-reduce buffer lifetimes] in ring-all-reduce.ts for why the
 * reuse is safe.
 */
import type { Transport } from '../transport/transport.js'

interface Pooled { buffer: Float32Array; inUse: boolean }
const pool = new WeakMap<Transport, Pooled>()

/**
 * A scratch of at least `length` floats for one call, and the function that hands it back.
 * After a failed call the transport may still hold references to the scratch, so
 * `release(false)` drops it from the pool instead.
 */
export function acquireScratch(transport: Transport, length: number): { scratch: Float32Array; release: (ok: boolean) => void } {
  let pooled = pool.get(transport)
  if (pooled?.inUse) {
    // Two calls in flight on one transport take each other's frames and fail (Note
    // [Transport semantics]); give the second its own buffer so it cannot also corrupt data.
    return { scratch: new Float32Array(length), release: () => {} }
  }
  if (!pooled || pooled.buffer.length < length) {
    pooled = { buffer: new Float32Array(length), inUse: false }
    pool.set(transport, pooled)
  }
  const held = pooled
  held.inUse = true
  const release = (ok: boolean) => {
    held.inUse = false
    if (!ok && pool.get(transport) === held) pool.delete(transport)
  }
  return { scratch: held.buffer.subarray(0, length), release }
}
