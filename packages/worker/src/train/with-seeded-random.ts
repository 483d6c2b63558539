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
import { mulberry32 } from '@ringtrain/core'

export function withSeededRandom<T>(seed: number, build: () => T): T {
  const original = Math.random
  Math.random = seededFloats(seed)
  try {
    return build()
  } finally {
    Math.random = original
  }
}

/** Floats in [0, 1) from core's seeded generator (the one the samplers use). */
function seededFloats(seed: number): () => number {
  const next = mulberry32(seed)
  return () => next() / 4294967296
}
