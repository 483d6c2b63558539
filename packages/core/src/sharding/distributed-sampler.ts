import { ConfigError } from '../errors.js'
import { seededPermutation } from './mulberry32.js'
import { requireInteger, requireRank } from './validate.js'

/** Arguments of {@link distributedSampler}. */
export interface DistributedSamplerOptions {
  /** Number of samples in the data set. */
  length: number
  rank: number
  worldSize: number
  /** Shuffle seed; must be the same on every rank. */
  seed: number
  /** Epoch number (0-based). The permutation is seeded by `seed + epoch`: pass the real epoch, or every epoch repeats the same order. */
  epoch: number
  /** Visit samples in a seeded random order (default true); false keeps `0 … length-1`. */
  shuffle?: boolean
  /**
   * Drop the tail so every rank has `floor(length / worldSize)` samples (default false).
   * When false, the order is padded by wrapping around to `ceil(length / worldSize)` per rank,
   * so up to `worldSize - 1` samples are seen twice in the epoch.
   */
  dropLast?: boolean
  /**
   * Positions of this epoch's order already consumed (default 0): skip them and shard the
   * rest. After `s` full steps of batch `B` on `W` ranks, exactly positions `0 … s·B·W - 1`
   * of the order were used, so a world that changes size mid-epoch resumes with
   * `startSample = s·B·W` and sees every remaining sample once (TorchElastic's
   * `ElasticDistributedSampler` `start_index`). Padding then repeats from the remainder.
   * At most `length`: once `s·B·W ≥ length` the epoch is over (only padding was left).
   */
  startSample?: number
}

/**
 * Number of samples each rank takes per epoch: the same on every rank, so every rank runs
 * the same number of steps and joins every all-reduce.
 */
export function shardLength(options: {
  length: number
  worldSize: number
  dropLast?: boolean
  startSample?: number
}): number {
  const { length, worldSize, dropLast = false, startSample = 0 } = options
  requireInteger('shardLength', 'length', length, 0)
  requireInteger('shardLength', 'worldSize', worldSize, 1)
  requireStartSample('shardLength', startSample, length)
  const remaining = length - startSample
  return dropLast ? Math.floor(remaining / worldSize) : Math.ceil(remaining / worldSize)
}

function requireStartSample(where: string, startSample: number, length: number): void {
  requireInteger(where, 'startSample', startSample, 0)
  if (startSample > length) {
    throw new ConfigError(`${where}: startSample (${startSample}) must be at most length (${length}).`, {
      argument: 'startSample',
      expected: `≤ ${length}`,
      got: startSample,
    })
  }
}

/**
 * The sample indices that `rank` visits in `epoch`, in order, with the semantics of
 * PyTorch's `DistributedSampler`:
 *
 * 1. Permute `0 … length-1` with a generator seeded by `seed + epoch` (identical on every
 *    rank, a new order each epoch), or keep the identity order when `shuffle` is false.
 * 2. Make the total a multiple of `worldSize`: with `dropLast`, cut the tail; otherwise
 *    append the start of the permutation again (wrapping as many times as needed when
 *    `length < worldSize`).
 * 3. Rank r takes positions r, r + W, r + 2W, … of that order (after `startSample`).
 *
 * Pure and local: no communication; every rank computes its own shard from the same
 * arguments. The shards are disjoint when `dropLast` is true or `length` is a multiple of
 * `worldSize`; otherwise only the padding repeats samples.
 *
 * @throws ConfigError (`E_CONFIG`) naming the argument when `length`, `rank`, `worldSize`,
 *   `seed`, `epoch` or `startSample` is not a valid integer, `rank ≥ worldSize`, or
 *   `startSample > length`.
 */
export function distributedSampler(options: DistributedSamplerOptions): Int32Array {
  const { length, rank, worldSize, seed, epoch, shuffle = true, dropLast = false, startSample = 0 } = options
  const where = 'distributedSampler'
  requireInteger(where, 'length', length, 0)
  requireRank(where, rank, worldSize)
  requireInteger(where, 'seed', seed, Number.MIN_SAFE_INTEGER)
  requireInteger(where, 'epoch', epoch, 0)

  requireStartSample(where, startSample, length)
  const perRank = shardLength({ length, worldSize, dropLast, startSample })
  if (perRank === 0) return new Int32Array(0)
  const order = (shuffle ? seededPermutation(length, seed + epoch) : identity(length)).subarray(startSample)
  const shard = new Int32Array(perRank)
  for (let i = 0; i < perRank; i++) {
    // Position in the padded order; `% order.length` is the wrap-around padding.
    shard[i] = order[(rank + i * worldSize) % order.length]!
  }
  return shard
}

function identity(length: number): Int32Array {
  const order = new Int32Array(length)
  for (let i = 0; i < length; i++) order[i] = i
  return order
}
