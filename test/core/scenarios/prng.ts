/** Floats in [0, 1) from core's seeded generator, so failures name a seed that replays them. */
import { mulberry32 as integers } from '@ringtrain/core'

export function mulberry32(seed: number): () => number {
  const next = integers(seed)
  return () => next() / 4294967296
}
