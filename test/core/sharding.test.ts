import { describe, expect, test } from 'vitest'
import {
  ConfigError,
  batchIndices,
  distributedSampler,
  evalShard,
  mulberry32,
  seededPermutation,
  stepsPerEpoch,
} from '@ringtrain/core'
import { globalBatchOrder, shardLength } from '@ringtrain/core/unstable-internals-do-not-import'

const lengths = [0, 1, 2, 3, 7, 10, 13, 100, 101]
const worldSizes = [1, 2, 3, 4, 7]

function allShards(length: number, worldSize: number, extra: { seed?: number; epoch?: number; dropLast?: boolean; shuffle?: boolean } = {}) {
  return Array.from({ length: worldSize }, (_, rank) =>
    distributedSampler({ length, rank, worldSize, seed: extra.seed ?? 42, epoch: extra.epoch ?? 0, ...extra }),
  )
}

function counts(shards: Int32Array[], length: number): number[] {
  const seen = new Array<number>(length).fill(0)
  for (const shard of shards) for (const index of shard) seen[index]!++
  return seen
}

describe('mulberry32', () => {
  test('gives the same numbers on every platform (pinned values)', () => {
    const next = mulberry32(1)
    const first = [next(), next(), next()]
    // Pinned on first run: a change here changes every shard of every job.
    expect(first).toEqual(PINNED_MULBERRY32_SEED_1)
    expect(Array.from(seededPermutation(10, 7))).toEqual(PINNED_PERMUTATION_10_SEED_7)
  })

  test('a permutation holds each index once', () => {
    const permutation = seededPermutation(1009, 3)
    expect(Array.from(permutation).sort((a, b) => a - b)).toEqual(Array.from({ length: 1009 }, (_, i) => i))
  })
})

describe('distributedSampler', () => {
  test.each(worldSizes)('with dropLast, shards of %i ranks are disjoint, equal and floor(length/W) long', (worldSize) => {
    for (const length of lengths) {
      const shards = allShards(length, worldSize, { dropLast: true })
      const seen = counts(shards, length)
      for (const shard of shards) expect(shard.length).toBe(Math.floor(length / worldSize))
      // disjoint: no index is taken twice; only the tail (length mod W) is dropped
      expect(seen.every((c) => c <= 1)).toBe(true)
      expect(seen.filter((c) => c === 0).length).toBe(length % worldSize)
    }
  })

  test.each(worldSizes)('without dropLast, shards of %i ranks cover the data set, padding only as needed', (worldSize) => {
    for (const length of lengths) {
      const shards = allShards(length, worldSize)
      const perRank = Math.ceil(length / worldSize)
      for (const shard of shards) expect(shard.length).toBe(perRank)
      const seen = counts(shards, length)
      expect(seen.every((c) => c >= 1)).toBe(true) // covers everything
      const repeats = seen.reduce((sum, c) => sum + c - 1, 0)
      expect(repeats).toBe(perRank * worldSize - length) // padding repeats exactly the shortfall
      if (length % worldSize === 0) expect(seen.every((c) => c === 1)).toBe(true)
    }
  })

  test('before padding, positions r, r+W, … of one permutation: rank shards interleave it', () => {
    const shards = allShards(13, 4, { epoch: 5 })
    const permutation = seededPermutation(13, 42 + 5)
    const padded = Array.from({ length: 16 }, (_, i) => permutation[i % 13])
    for (let rank = 0; rank < 4; rank++) {
      expect(Array.from(shards[rank]!)).toEqual(padded.filter((_, i) => i % 4 === rank))
    }
  })

  test('length < worldSize wraps around as many times as needed', () => {
    const shards = allShards(1, 4)
    expect(shards.map((s) => Array.from(s))).toEqual([[0], [0], [0], [0]])
    expect(allShards(2, 7, { dropLast: true }).every((s) => s.length === 0)).toBe(true)
  })

  test('worldSize 1 takes the whole permutation; shuffle false keeps the identity order', () => {
    expect(Array.from(allShards(10, 1)[0]!)).toEqual(Array.from(seededPermutation(10, 42)))
    expect(allShards(10, 3, { shuffle: false }).map((s) => Array.from(s))).toEqual([
      [0, 3, 6, 9],
      [1, 4, 7, 0],
      [2, 5, 8, 1],
    ])
  })

  test('the same seed and epoch give the same shards; another seed or epoch reshuffles', () => {
    const a = allShards(100, 4, { seed: 1, epoch: 0 })
    expect(allShards(100, 4, { seed: 1, epoch: 0 })).toEqual(a)
    expect(allShards(100, 4, { seed: 2, epoch: 0 })).not.toEqual(a)
    const epochs = [0, 1, 2].map((epoch) => allShards(100, 4, { seed: 1, epoch }))
    expect(epochs[1]).not.toEqual(epochs[0])
    expect(epochs[2]).not.toEqual(epochs[1])
    // a new epoch is still a full, disjoint cover
    expect(counts(epochs[1]!, 100).every((c) => c === 1)).toBe(true)
  })

  test.each([
    [{ rank: 4, worldSize: 4 }, 'distributedSampler: rank (4) must be less than worldSize (4).'],
    [{ rank: -1 }, 'distributedSampler: rank (-1) must be a non-negative integer.'],
    [{ worldSize: 0 }, 'distributedSampler: worldSize (0) must be a positive integer.'],
    [{ length: -1 }, 'distributedSampler: length (-1) must be a non-negative integer.'],
    [{ length: 2.5 }, 'distributedSampler: length (2.5) must be a non-negative integer.'],
    [{ epoch: -1 }, 'distributedSampler: epoch (-1) must be a non-negative integer.'],
    [{ seed: Number.NaN }, 'distributedSampler: seed (NaN) must be an integer.'],
  ])('rejects %o', (bad, message) => {
    const call = () => distributedSampler({ length: 10, rank: 0, worldSize: 4, seed: 0, epoch: 0, ...bad })
    expect(call).toThrow(ConfigError)
    expect(call).toThrow(message)
    try {
      call()
    } catch (error) {
      expect((error as ConfigError).code).toBe('E_CONFIG')
      expect((error as ConfigError).message).toBe(message)
    }
  })
})

describe('re-sharding mid-epoch with startSample', () => {
  test('4 ranks for 3 steps, then 3 ranks from sample 3·B·4: every sample once', () => {
    const length = 120
    const batchSize = 5
    const seed = 7
    const epoch = 3
    const seen = new Array<number>(length).fill(0)
    const before = allShards(length, 4, { seed, epoch })
    for (let b = 0; b < 3; b++) for (const shard of before) for (const i of batchIndices(shard, b, batchSize)) seen[i]!++
    const startSample = 3 * batchSize * 4
    const after = Array.from({ length: 3 }, (_, rank) =>
      distributedSampler({ length, rank, worldSize: 3, seed, epoch, startSample }),
    )
    for (const shard of after) for (const i of shard) seen[i]!++
    expect(seen.every((c) => c === 1)).toBe(true)
    expect(stepsPerEpoch({ length, worldSize: 3, batchSize, startSample })).toBe(4) // 20 per rank
  })

  test('startSample 0 is the plain shard; startSample beyond length is rejected', () => {
    expect(distributedSampler({ length: 9, rank: 1, worldSize: 2, seed: 1, epoch: 0, startSample: 0 })).toEqual(
      distributedSampler({ length: 9, rank: 1, worldSize: 2, seed: 1, epoch: 0 }),
    )
    expect(distributedSampler({ length: 9, rank: 1, worldSize: 2, seed: 1, epoch: 0, startSample: 9 }).length).toBe(0)
    expect(() => distributedSampler({ length: 9, rank: 0, worldSize: 2, seed: 1, epoch: 0, startSample: 10 })).toThrow(
      'distributedSampler: startSample (10) must be at most length (9).',
    )
  })
})

describe('batches', () => {
  test('stepsPerEpoch counts a last partial batch unless dropLast', () => {
    expect(stepsPerEpoch({ length: 100, worldSize: 3, batchSize: 8 })).toBe(5) // 34 per rank
    expect(stepsPerEpoch({ length: 100, worldSize: 3, batchSize: 8, dropLast: true })).toBe(4) // 33 per rank
    expect(stepsPerEpoch({ length: 0, worldSize: 3, batchSize: 8 })).toBe(0)
    expect(shardLength({ length: 100, worldSize: 3 })).toBe(34)
    expect(() => stepsPerEpoch({ length: 10, worldSize: 2, batchSize: 0 })).toThrow(
      'stepsPerEpoch: batchSize (0) must be a positive integer.',
    )
  })

  test('batchIndices slices batch b; the partial last batch follows dropLast', () => {
    const shard = Int32Array.from([9, 8, 7, 6, 5, 4, 3])
    expect(Array.from(batchIndices(shard, 0, 3))).toEqual([9, 8, 7])
    expect(Array.from(batchIndices(shard, 2, 3))).toEqual([3])
    expect(() => batchIndices(shard, 2, 3, { dropLast: true })).toThrow(
      'batchIndices: batchIndex (2) must be less than the number of batches (2) in a shard of 7 samples with batchSize 3 and dropLast.',
    )
    expect(() => batchIndices(shard, 0, 0)).toThrow('batchIndices: batchSize (0) must be a positive integer.')
  })

  test('every step, all ranks have the same batch size, and the steps cover the shard', () => {
    for (const dropLast of [false, true]) {
      const steps = stepsPerEpoch({ length: 101, worldSize: 4, batchSize: 6, dropLast })
      const shards = allShards(101, 4, { dropLast })
      for (let b = 0; b < steps; b++) {
        const sizes = shards.map((s) => batchIndices(s, b, 6, { dropLast }).length)
        expect(new Set(sizes).size).toBe(1)
      }
    }
  })

  test('globalBatchOrder is the concatenation of every rank’s batch b in rank order', () => {
    const options = { length: 50, worldSize: 3, seed: 9, epoch: 2, batchSize: 4 }
    const shards = allShards(50, 3, { seed: 9, epoch: 2 })
    for (const batchIndex of [0, 4]) {
      const expected = shards.flatMap((s) => Array.from(batchIndices(s, batchIndex, 4)))
      expect(Array.from(globalBatchOrder({ ...options, batchIndex }))).toEqual(expected)
    }
    // last step (17 per rank, batch 4): one sample from each rank
    expect(globalBatchOrder({ ...options, batchIndex: 4 }).length).toBe(3)
    expect(() => globalBatchOrder({ ...options, worldSize: 0, batchIndex: 0 })).toThrow(
      'globalBatchOrder: worldSize (0) must be a positive integer.',
    )
  })
})

describe('evalShard', () => {
  test.each(worldSizes)('counts each index exactly once across %i ranks', (worldSize) => {
    for (const length of lengths) {
      const shards = Array.from({ length: worldSize }, (_, rank) => evalShard({ length, rank, worldSize }))
      expect(counts(shards, length).every((c) => c === 1)).toBe(true)
      expect(shards.reduce((sum, s) => sum + s.length, 0)).toBe(length)
    }
  })

  test('ranks beyond the data get nothing; bad rank is rejected', () => {
    expect(Array.from(evalShard({ length: 2, rank: 3, worldSize: 4 }))).toEqual([])
    expect(Array.from(evalShard({ length: 10, rank: 1, worldSize: 4 }))).toEqual([1, 5, 9])
    expect(() => evalShard({ length: 2, rank: 4, worldSize: 4 })).toThrow(
      'evalShard: rank (4) must be less than worldSize (4).',
    )
  })
})

const PINNED_MULBERRY32_SEED_1 = [711699459, 1679400207, 1692264768]
const PINNED_PERMUTATION_10_SEED_7 = [8, 4, 0, 1, 6, 9, 7, 5, 3, 2]
