import { ConfigError } from '../errors.js'
import { distributedSampler, shardLength } from './distributed-sampler.js'
import type { DistributedSamplerOptions } from './distributed-sampler.js'
import { requireInteger } from './validate.js'

/**
 * Optimizer steps per epoch: the number of batches in one rank's shard, identical on every
 * rank. With `dropLast`, the shard is `floor(length / worldSize)` samples and a last partial
 * batch is dropped; otherwise the shard is `ceil(length / worldSize)` and a last partial
 * batch counts (every rank's last batch then has the same, smaller size).
 *
 * @throws ConfigError (`E_CONFIG`) naming the argument when `length`, `worldSize` or
 *   `batchSize` is invalid.
 */
export function stepsPerEpoch(options: {
  length: number
  worldSize: number
  batchSize: number
  dropLast?: boolean
  /** Samples of the epoch already consumed; see `DistributedSamplerOptions.startSample`. */
  startSample?: number
}): number {
  const { length, worldSize, batchSize, dropLast = false, startSample = 0 } = options
  requireInteger('stepsPerEpoch', 'batchSize', batchSize, 1)
  const perRank = shardLength({ length, worldSize, dropLast, startSample })
  return dropLast ? Math.floor(perRank / batchSize) : Math.ceil(perRank / batchSize)
}

/**
 * Batch `batchIndex` (0-based) of a rank's shard: `shard[b·B … (b+1)·B)`, a view, not a
 * copy. The last batch may be shorter, unless `dropLast` is set, in which case asking for
 * it is an error, just as {@link stepsPerEpoch} does not count it.
 *
 * @throws ConfigError (`E_CONFIG`) when `batchSize` is not a positive integer or
 *   `batchIndex` is not below the number of batches.
 */
export function batchIndices(
  shard: Int32Array,
  batchIndex: number,
  batchSize: number,
  options: { dropLast?: boolean } = {},
): Int32Array {
  requireInteger('batchIndices', 'batchSize', batchSize, 1)
  requireInteger('batchIndices', 'batchIndex', batchIndex, 0)
  const batches = options.dropLast
    ? Math.floor(shard.length / batchSize)
    : Math.ceil(shard.length / batchSize)
  if (batchIndex >= batches) {
    throw new ConfigError(
      `batchIndices: batchIndex (${batchIndex}) must be less than the number of batches (${batches}) ` +
        `in a shard of ${shard.length} samples with batchSize ${batchSize}` +
        `${options.dropLast ? ' and dropLast' : ''}.`,
      { argument: 'batchIndex', expected: `< ${batches}`, got: batchIndex },
    )
  }
  const start = batchIndex * batchSize
  return shard.subarray(start, Math.min(start + batchSize, shard.length))
}

/**
 * The samples of step `batchIndex` across the whole world: rank 0's batch, then rank 1's,
 * …, then rank W-1's. One process training on this order with batch size
 * `worldSize · batchSize` takes the same optimizer step as `worldSize` ranks that average
 * their gradients (up to float summation order), because every rank's batch b has the same
 * size. The equivalence test uses this as its oracle.
 *
 * @throws ConfigError (`E_CONFIG`) as {@link distributedSampler} and {@link batchIndices}.
 */
export function globalBatchOrder(
  options: Omit<DistributedSamplerOptions, 'rank'> & { batchIndex: number; batchSize: number },
): Int32Array {
  const { batchIndex, batchSize, worldSize, ...sampler } = options
  requireInteger('globalBatchOrder', 'worldSize', worldSize, 1)
  const parts: Int32Array[] = []
  for (let rank = 0; rank < worldSize; rank++) {
    const shard = distributedSampler({ ...sampler, rank, worldSize })
    parts.push(batchIndices(shard, batchIndex, batchSize, { dropLast: sampler.dropLast ?? false }))
  }
  const order = new Int32Array(parts.reduce((sum, part) => sum + part.length, 0))
  let offset = 0
  for (const part of parts) {
    order.set(part, offset)
    offset += part.length
  }
  return order
}
