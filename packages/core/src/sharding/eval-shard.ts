import { requireInteger, requireRank } from './validate.js'

/**
 * The sample indices `rank` evaluates: r, r + W, r + 2W, … below `length`, in order, with no
 * shuffle and no padding, so across all ranks every sample is counted exactly once.
 *
 * Ranks may get different counts (they differ by at most one, and a rank may get none when
 * `length < worldSize`), so evaluation must not run a collective per batch. Reduce the
 * metrics once, at the end, as **sums** (for example `correct` and `total`, or the summed
 * loss and the sample count) and divide after the reduction. Never average per-rank
 * averages: with unequal counts that weights some samples more than others.
 *
 * @throws ConfigError (`E_CONFIG`) naming the argument when `length`, `rank` or `worldSize`
 *   is invalid or `rank ≥ worldSize`.
 */
export function evalShard(options: { length: number; rank: number; worldSize: number }): Int32Array {
  const { length, rank, worldSize } = options
  requireInteger('evalShard', 'length', length, 0)
  requireRank('evalShard', rank, worldSize)
  const count = rank < length ? Math.ceil((length - rank) / worldSize) : 0
  const shard = new Int32Array(count)
  for (let i = 0; i < count; i++) shard[i] = rank + i * worldSize
  return shard
}
