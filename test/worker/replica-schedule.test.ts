import { beforeAll, describe, expect, test } from 'vitest'
import type * as TF from '@tensorflow/tfjs'
import { defineTask, tf, type LearningRateSchedule } from '@ringtrain/worker'
import { baseLearningRate, learningRateAt, Replica, withBaseLearningRate } from '@ringtrain/worker/unstable-internals-do-not-import'

beforeAll(async () => {
  await tf.setBackend('cpu')
})

describe('learningRateAt', () => {
  const cases: [string, number | LearningRateSchedule, [step: number, rate: number][]][] = [
    ['a number', 0.1, [[0, 0.1], [1000, 0.1]]],
    ['constant', { type: 'constant', learningRate: 0.3 }, [[0, 0.3], [7, 0.3]]],
    ['step', { type: 'step', learningRate: 1, stepSize: 10, gamma: 0.5 }, [[0, 1], [9, 1], [10, 0.5], [25, 0.25], [30, 0.125]]],
    ['cosine', { type: 'cosine', learningRate: 1, totalSteps: 100, minLearningRate: 0.1 }, [[0, 1], [50, 0.55], [100, 0.1], [150, 0.1]]],
    ['cosine without minimum', { type: 'cosine', learningRate: 2, totalSteps: 4 }, [[1, 1 + Math.SQRT1_2], [2, 1], [4, 0]]],
    ['warmup then constant', { type: 'warmup', warmupSteps: 4, then: 0.8 }, [[0, 0.2], [1, 0.4], [3, 0.8], [4, 0.8], [100, 0.8]]],
    [
      'warmup then step',
      { type: 'warmup', warmupSteps: 2, then: { type: 'step', learningRate: 1, stepSize: 3, gamma: 0.1 } },
      [[0, 0.5], [1, 1], [2, 1], [4, 1], [5, 0.1]],
    ],
    ['zero warmup steps', { type: 'warmup', warmupSteps: 0, then: 0.5 }, [[0, 0.5]]],
  ]
  test.each(cases)('%s', (_name, schedule, points) => {
    for (const [step, rate] of points) expect(learningRateAt(schedule, step), `step ${step}`).toBeCloseTo(rate, 12)
  })
})

describe('the replica steps with the scheduled rate', () => {
  const task = (learningRate: number | LearningRateSchedule) =>
    defineTask({
      name: 'scalar',
      model: () => {
        const w = tf.variable(tf.scalar(0))
        return { variables: { w }, apply: (x: TF.Tensor | TF.Tensor[]) => tf.mul(x as TF.Tensor, w) }
      },
      loss: 'meanSquaredError',
      optimizer: 'sgd',
      learningRate,
      data: { train: () => ({ length: 0, inputShape: [1], targetShape: [1], batch: () => ({ x: tf.zeros([1, 1]), y: tf.zeros([1, 1]) }) }) },
    })

  test('SGD moves w by -rate(step) · g at each step', async () => {
    const replica = await Replica.create(task({ type: 'step', learningRate: 1, stepSize: 2, gamma: 0.5 }))
    let w = 0
    for (let step = 0; step < 5; step++) {
      replica.applyGradients(new Float32Array([1]), step)
      w -= learningRateAt({ type: 'step', learningRate: 1, stepSize: 2, gamma: 0.5 }, step)
      expect(replica.readWeights()[0]).toBeCloseTo(w, 6)
    }
    replica.dispose()
  })

  test('baseLearningRate (--lr) sets a number, and is validated naming --lr', async () => {
    const replica = await Replica.create(task(1), { baseLearningRate: 0.25 })
    expect(replica.applyGradients(new Float32Array([1]), 0)).toBe(0.25)
    expect(replica.readWeights()[0]).toBe(-0.25)
    replica.dispose()
    await expect(Replica.create(task(1), { baseLearningRate: -1 })).rejects.toThrow("task 'scalar': --lr must be a finite number > 0, got -1.")
  })

  test('baseLearningRate (--lr) scales a schedule: warm-up and decay keep their shape', async () => {
    const schedule: LearningRateSchedule = { type: 'warmup', warmupSteps: 2, then: { type: 'cosine', learningRate: 0.1, totalSteps: 4, minLearningRate: 0.02 } }
    const replica = await Replica.create(task(schedule), { baseLearningRate: 0.05 })
    // Half the base rate: every point of the schedule halves, the cosine's floor included.
    for (let step = 0; step < 8; step++) expect(replica.learningRateAt(step), `step ${step}`).toBeCloseTo(learningRateAt(schedule, step) / 2, 12)
    expect(replica.learningRateAt(2)).toBe(0.05) // the base itself is exact, not 0.1 × 0.5
    replica.dispose()
  })
})

describe('withBaseLearningRate', () => {
  test.each<[string, number | LearningRateSchedule, number | LearningRateSchedule]>([
    ['a number', 0.1, 0.3],
    ['constant', { type: 'constant', learningRate: 0.1 }, { type: 'constant', learningRate: 0.3 }],
    ['step', { type: 'step', learningRate: 0.1, stepSize: 5, gamma: 0.5 }, { type: 'step', learningRate: 0.3, stepSize: 5, gamma: 0.5 }],
    ['cosine without floor', { type: 'cosine', learningRate: 0.1, totalSteps: 9 }, { type: 'cosine', learningRate: 0.3, totalSteps: 9 }],
    ['warmup then cosine', { type: 'warmup', warmupSteps: 3, then: { type: 'cosine', learningRate: 0.1, totalSteps: 9, minLearningRate: 0.01 } },
      { type: 'warmup', warmupSteps: 3, then: { type: 'cosine', learningRate: 0.3, totalSteps: 9, minLearningRate: 0.01 * (0.3 / 0.1) } }],
  ])('%s', (_name, schedule, expected) => {
    expect(withBaseLearningRate(schedule, 0.3)).toEqual(expected)
    expect(baseLearningRate(withBaseLearningRate(schedule, 0.3))).toBe(0.3)
  })
})
