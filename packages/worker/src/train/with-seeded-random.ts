/**
 * Runs `build` with `Math.random` replaced by a generator seeded with `seed`, then puts it
 * back.
 *
 * Note [Seeded initializers]: tfjs's random ops (and so every layer initializer) draw their
 * seed from `Math.random()` when none is given (`tfjs-core/dist/ops/rand_util.js`). Seeding
 * `Math.random` while the model is built therefore makes the initial weights a function of
 * `seed`, on every backend. This only makes runs reproducible; replicas are made identical
 * by rank 0's broadcast of its weights, not by this.
 */
export function withSeededRandom<T>(seed: number, build: () => T): T {
  const original = Math.random
  Math.random = mulberry32(seed)
  try {
    return build()
  } finally {
    Math.random = original
  }
}

/** Mulberry32: a small, fast 32-bit generator of floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
