// The framework's first test (docs/design.md): W ranks that each compute gradients on their own
// B samples, average them, and apply the same average, end where one replica trained on the
// concatenated W·B batch ends, and stay bitwise identical to each other.
import { beforeAll, describe, expect, test } from 'vitest'
import { tf } from '@ringtrain/worker'
import { Replica } from '@ringtrain/worker/unstable-internals-do-not-import'
import { disposeBatch, regressionBatch, regressionTask } from './fixtures/tiny-tasks.ts'

const steps = 20
const perRankBatch = 4

/** Tolerance for float32 sums over a different order, compounded over `steps` steps. */
function toleranceFor(worldSize: number): number {
  return worldSize <= 4 ? 1e-5 : 1e-4
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let max = 0
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!))
  return max
}

/** What the ring all-reduce computes: the element-wise mean of the ranks' buffers. */
function average(buffers: Float32Array[]): Float32Array {
  const out = new Float32Array(buffers[0]!.length)
  for (let i = 0; i < out.length; i++) {
    let sum = 0
    for (const b of buffers) sum += b[i]!
    out[i] = sum / buffers.length
  }
  return out
}

beforeAll(async () => {
  await tf.setBackend('cpu')
})

describe.each(['sgd', 'adam'] as const)('data-parallel equals one big batch with %s', (optimizer) => {
  test.each([2, 3])('over %i simulated ranks for 20 steps', async (worldSize) => {
    const task = regressionTask(optimizer, { learningRate: optimizer === 'sgd' ? 0.1 : 0.01 })
    // Different seeds on purpose: rank 0's broadcast, not the seed, makes replicas identical.
    const ranks = await Promise.all(Array.from({ length: worldSize }, (_, rank) => Replica.create(task, { seed: 100 + rank })))
    const single = await Replica.create(task, { seed: 7 })
    const initial = ranks[0]!.readWeights()
    for (const replica of [...ranks.slice(1), single]) replica.writeWeights(initial)
    expect(ranks.map((r) => r.layout.hash)).toEqual(ranks.map(() => single.layout.hash))

    for (let step = 0; step < steps; step++) {
      const first = step * worldSize * perRankBatch
      const local = ranks.map((replica, rank) => {
        const batch = regressionBatch(first + rank * perRankBatch, perRankBatch)
        const { gradients } = replica.computeGradients(batch)
        disposeBatch(batch)
        return gradients.slice()
      })
      const averaged = average(local)
      for (const replica of ranks) replica.applyGradients(averaged.slice(), step)

      const whole = regressionBatch(first, worldSize * perRankBatch)
      single.applyGradients(single.computeGradients(whole).gradients, step)
      disposeBatch(whole)
    }

    const reference = single.readWeights()
    const weights = ranks.map((r) => r.readWeights())
    // The replicas stayed bitwise identical (same bytes in, same optimizer state).
    for (const w of weights.slice(1)) expect(Buffer.from(w.buffer).equals(Buffer.from(weights[0]!.buffer))).toBe(true)
    expect(new Set(ranks.map((r) => r.parameterHash())).size).toBe(1)
    // And they equal one process on the concatenated batch, up to float summation order.
    expect(maxAbsDiff(weights[0]!, reference)).toBeLessThanOrEqual(toleranceFor(worldSize))
    // Training moved the weights (the test is not vacuous).
    expect(maxAbsDiff(weights[0]!, initial)).toBeGreaterThan(1e-3)
    for (const replica of [...ranks, single]) replica.dispose()
  })
})
