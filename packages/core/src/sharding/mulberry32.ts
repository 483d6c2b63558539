/**
 * Seeded pseudo-random numbers of our own, so that every rank on every platform and
 * JavaScript engine draws the same sequence from the same seed (Math.random cannot be
 * seeded, and library generators may change between versions).
 *
 * Only 32-bit integer arithmetic (`Math.imul`, shifts) and exact double operations are
 * used, so the results are bit-identical everywhere.
 */

/**
 * splitmix32 finalizer: spreads nearby seeds (seed, seed + 1, …) over the whole 32-bit
 * space, so the streams for epoch 0 and epoch 1 look unrelated.
 */
export function mixSeed(seed: number): number {
  let z = (seed + 0x9e3779b9) | 0
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return (z ^ (z >>> 16)) >>> 0
}

/**
 * mulberry32: a generator with 32 bits of state. Each call of the returned function gives
 * the next unsigned 32-bit integer. `seed` is taken modulo 2^32 and mixed first.
 */
export function mulberry32(seed: number): () => number {
  let state = mixSeed(seed)
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), state | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
}

/**
 * A uniformly random permutation of `0 … length-1` (Fisher–Yates), fully determined by
 * `seed`. Draws are unbiased: a draw that would favour small values is rejected.
 */
export function seededPermutation(length: number, seed: number): Int32Array {
  const next = mulberry32(seed)
  const permutation = new Int32Array(length)
  for (let i = 0; i < length; i++) permutation[i] = i
  for (let i = length - 1; i > 0; i--) {
    const j = uniformBelow(next, i + 1)
    const swap = permutation[i]!
    permutation[i] = permutation[j]!
    permutation[j] = swap
  }
  return permutation
}

/** An integer in [0, bound), bound ≤ 2^32, without modulo bias. */
function uniformBelow(next: () => number, bound: number): number {
  const limit = 0x100000000 - (0x100000000 % bound)
  let value = next()
  while (value >= limit) value = next()
  return value % bound
}
