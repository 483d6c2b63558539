import { beforeAll, describe, expect, test } from 'vitest'
import type * as TF from '@tensorflow/tfjs'
import { defineTask, tf, type LearningRateSchedule } from '@ringtrain/worker'
import { learningRateAt, Replica } from '@ringtrain/worker/unstable-internals-do-not-import'

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

  test('options.learningRate overrides the task and is validated', async () => {
    const replica = await Replica.create(task(1), { learningRate: 0.25 })
    replica.applyGradients(new Float32Array([1]), 0)
    expect(replica.readWeights()[0]).toBe(-0.25)
    replica.dispose()
    await expect(Replica.create(task(1), { learningRate: -1 })).rejects.toThrow("task 'scalar': --learning-rate must be a finite number > 0, got -1.")
  })
})
