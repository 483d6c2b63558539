import { beforeAll, describe, expect, test } from 'vitest'
import type * as TF from '@tensorflow/tfjs'
import { defineTask, optimizerNames, tf } from '@ringtrain/worker'
import { Replica } from '@ringtrain/worker/unstable-internals-do-not-import'
import { disposeBatch, regressionBatch, regressionTask } from './fixtures/tiny-tasks.ts'

beforeAll(async () => {
  await tf.setBackend('cpu')
})

/** y = x·w for a custom model whose variables are a record { w }. */
function linearModel(w: number[]) {
  const variables = { w: tf.variable(tf.tensor2d(w, [w.length, 1])) }
  return { variables, apply: (x: TF.Tensor | TF.Tensor[]) => tf.matMul(x as TF.Tensor2D, variables.w) }
}

const oneSample = () => ({ x: tf.tensor2d([[1, 2]]), y: tf.tensor2d([[0]]) })

describe('Replica', () => {
  test.each(optimizerNames)('%s builds, steps, lowers the loss and leaks no tensors', async (name) => {
    const replica = await Replica.create(regressionTask(name, { learningRate: name === 'adadelta' ? 1 : 0.05 }), { seed: 1 })
    const batch = regressionBatch(0, 16)
    const before = replica.computeGradients(batch).loss
    replica.applyGradients(replica.computeGradients(batch).gradients, 0) // creates the optimizer's slots
    const tensors = tf.memory().numTensors
    let loss = before
    for (let step = 1; step < 30; step++) {
      const result = replica.computeGradients(batch)
      loss = result.loss
      replica.applyGradients(result.gradients, step)
    }
    expect(tf.memory().numTensors).toBe(tensors) // no tensor leaks across steps
    expect(loss).toBeLessThan(before)
    disposeBatch(batch)
    replica.dispose()
  })

  test('layout lists trainable weights in model order with their model.json names', async () => {
    const replica = await Replica.create(regressionTask('sgd'))
    expect(replica.layout.entries.map((e) => [e.name, e.shape])).toEqual([
      ['hidden/kernel', [3, 8]],
      ['hidden/bias', [8]],
      ['out/kernel', [8, 2]],
      ['out/bias', [2]],
    ])
    expect(replica.computeGradients(regressionBatch(0, 2)).gradients.length).toBe(3 * 8 + 8 + 16 + 2)
    replica.dispose()
  })

  test('the same seed builds the same weights; writeWeights copies, and parameterHash follows', async () => {
    const [a, b, c] = await Promise.all([1, 1, 2].map((seed) => Replica.create(regressionTask('sgd'), { seed })))
    expect(a!.parameterHash()).toBe(b!.parameterHash())
    expect(c!.parameterHash()).not.toBe(a!.parameterHash())
    const weights = a!.readWeights()
    c!.writeWeights(weights)
    weights.fill(0) // the caller's buffer is not adopted by the variables
    expect(c!.parameterHash()).toBe(a!.parameterHash())
    for (const r of [a, b, c]) r!.dispose()
  })

  test('reuses one gradient buffer across steps', async () => {
    const replica = await Replica.create(regressionTask('sgd'))
    const first = replica.computeGradients(regressionBatch(0, 4)).gradients
    expect(replica.computeGradients(regressionBatch(4, 4)).gradients).toBe(first)
    replica.dispose()
  })

  test('clipNorm clips the averaged gradient to the global norm before the step', async () => {
    const task = defineTask({ ...baseLinear(), clipNorm: 1, learningRate: 1 })
    const replica = await Replica.create(task)
    const averaged = new Float32Array([3, 4]) // norm 5
    replica.applyGradients(averaged, 0)
    // w = [1,-2] - 1 * [3,4]/5
    expect(Array.from(replica.readWeights())).toEqual([Math.fround(1 - Math.fround(0.6)), Math.fround(-2 - Math.fround(0.8))])
    replica.dispose()
  })

  test('a custom-variable model with a custom loss: gradient in closed form', async () => {
    const task = defineTask({
      ...baseLinear(),
      // Sum of absolute errors / 2 over the batch: d/dw = sign(x·w - y) · x / 2
      loss: (yTrue, yPred) => tf.div(tf.sum(tf.abs(tf.sub(yPred, yTrue))), 2) as TF.Scalar,
    })
    const replica = await Replica.create(task)
    const { loss, gradients } = replica.computeGradients(oneSample()) // x·w = 1 - 4 = -3
    expect(loss).toBeCloseTo(1.5, 6)
    expect(Array.from(gradients)).toEqual([-0.5, -1])
    expect(replica.layout.entries.map((e) => e.name)).toEqual(['w'])
    replica.dispose()
  })

  test('a custom loss that returns a non-scalar is a ConfigError naming the task', async () => {
    const replica = await Replica.create(defineTask({ ...baseLinear(), loss: (t, p) => tf.sub(p, t) as unknown as TF.Scalar }))
    expect(() => replica.computeGradients(oneSample())).toThrow(
      "task 'linear': the loss function returned a tensor of shape [1,1]; it must return a scalar tensor (the mean over the batch).",
    )
    replica.dispose()
  })
})

describe('regularization flows through the gradient', () => {
  // Data part for one sample x=[1,2], y=0, w=[1,-2]: mse = (x·w)² = 9, d/dw = 2(x·w)x = [-6,-12].
  test.each([
    [{ l2: 0.5 }, 9 + 0.5 * 5, [-6 + 2 * 0.5 * 1, -12 + 2 * 0.5 * -2]],
    [{ l1: 0.25 }, 9 + 0.25 * 3, [-6 + 0.25, -12 - 0.25]],
    [{ l1: 0.25, l2: 0.5 }, 9 + 0.75 + 2.5, [-6 + 0.25 + 1, -12 - 0.25 - 2]],
  ])('%o on a linear model (closed form)', async (regularization, expectedLoss, expectedGradient) => {
    const replica = await Replica.create(defineTask({ ...baseLinear(), regularization }))
    const { loss, gradients } = replica.computeGradients(oneSample())
    expect(loss).toBeCloseTo(expectedLoss, 5)
    expect(Array.from(gradients)).toEqual(expectedGradient.map(Math.fround))
    replica.dispose()
  })

  test('a LayersModel regularizes kernels, not biases', async () => {
    const plain = await Replica.create(regressionTask('sgd'), { seed: 3 })
    const l2 = await Replica.create(regressionTask('sgd', { regularization: { l2: 0.1 } }), { seed: 3 })
    const batch = regressionBatch(0, 8)
    const a = plain.computeGradients(batch).gradients.slice()
    const b = l2.computeGradients(batch).gradients.slice()
    const weights = plain.readWeights()
    for (const entry of plain.layout.entries) {
      for (let i = entry.offset; i < entry.offset + entry.length; i++) {
        const expected = entry.name.endsWith('kernel') ? a[i]! + 2 * 0.1 * weights[i]! : a[i]!
        expect(b[i]).toBeCloseTo(expected, 6)
      }
    }
    disposeBatch(batch)
    plain.dispose()
    l2.dispose()
  })
})

describe('evaluate', () => {
  // The model's output is its input: predictions are the argmax (or the value) of x.
  const identityTask = (loss: 'softmaxCrossEntropy' | 'sparseCategoricalCrossentropy' | 'binaryCrossentropy') =>
    defineTask({
      name: 'identity',
      model: () => {
        const s = tf.variable(tf.scalar(1))
        return { variables: { s }, apply: (x: TF.Tensor | TF.Tensor[]) => tf.mul(x as TF.Tensor, s) }
      },
      loss,
      optimizer: 'sgd',
      metrics: ['accuracy', 'mse', 'mae', { name: 'positives', fn: (_t, p) => tf.greater(tf.max(p, -1), 0).toFloat() }],
      data: baseLinear().data,
    })

  test('returns exact sums and counts, never averages', async () => {
    const replica = await Replica.create(identityTask('softmaxCrossEntropy'))
    const x = tf.tensor2d([[1, 0, 0], [0, 2, 0], [0, 0, -1], [1, 0, 0]])
    const y = tf.tensor2d([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]])
    const sums = replica.evaluate({ x, y })
    // argmax of [0,0,-1] is 0: right for row 3; row 4 is the only miss.
    expect(sums.accuracy).toEqual({ sum: 3, count: 4 })
    // errors per element: (0,0,0), (0,1,0), (1,0,1), (1,1,0)
    expect(sums.mse).toEqual({ sum: 0 + 1 + 2 + 2, count: 12 })
    expect(sums.mae).toEqual({ sum: 0 + 1 + 2 + 2, count: 12 })
    expect(sums.positives).toEqual({ sum: 3, count: 4 })
    expect(sums.loss!.count).toBe(4)
    expect(sums.loss!.sum / 4).toBeCloseTo(tf.losses.softmaxCrossEntropy(y, x).dataSync()[0]!, 5)
    replica.dispose()
  })

  test('accuracy with class-index labels and with one sigmoid output', async () => {
    const sparse = await Replica.create(identityTask('sparseCategoricalCrossentropy'))
    const probabilities = tf.tensor2d([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3], [0.6, 0.3, 0.1]])
    const sums = sparse.evaluate({ x: probabilities, y: tf.tensor1d([0, 1, 2, 1]) })
    expect(sums.accuracy).toEqual({ sum: 2, count: 4 })
    const expectedLoss = -(Math.log(0.8) + Math.log(0.7) + Math.log(0.3) + Math.log(0.3))
    expect(sums.loss!.sum).toBeCloseTo(expectedLoss, 4)
    const binary = await Replica.create(identityTask('binaryCrossentropy'))
    expect(binary.evaluate({ x: tf.tensor2d([[0.9], [0.2], [0.7]]), y: tf.tensor2d([[1], [1], [0]]) }).accuracy).toEqual({ sum: 1, count: 3 })
    sparse.dispose()
    binary.dispose()
  })
})

function baseLinear() {
  return {
    name: 'linear',
    model: () => linearModel([1, -2]),
    loss: 'meanSquaredError' as const,
    optimizer: 'sgd' as const,
    learningRate: 1,
    data: { train: () => ({ length: 0, inputShape: [2], targetShape: [1], batch: () => ({ x: tf.zeros([1, 2]), y: tf.zeros([1, 1]) }) }) },
  }
}

describe('optimizer state', () => {
  test.each(['adam', 'momentum', 'rmsprop'] as const)(
    'a fresh %s replica given the weights and optimizer state steps bitwise like the original',
    async (name) => {
      const original = await Replica.create(regressionTask(name), { seed: 1 })
      const batch = regressionBatch(0, 8)
      for (let step = 0; step < 3; step++) original.applyGradients(original.computeGradients(batch).gradients, step)
      const joiner = await Replica.create(regressionTask(name), { seed: 2 })
      joiner.applyGradients(joiner.computeGradients(batch).gradients, 0) // stale slots the state must replace
      joiner.writeWeights(original.readWeights())
      const state = await original.readOptimizerState()
      expect(state.layout.entries[0]!.name).toBe('iter')
      expect(state.values[0]).toBe(3)
      const tensors = tf.memory().numTensors
      await joiner.writeOptimizerState(state)
      expect(tf.memory().numTensors).toBe(tensors) // the old slots were released
      expect((await joiner.readOptimizerState()).layout.hash).toBe(state.layout.hash)
      for (let step = 3; step < 6; step++) {
        const gradients = original.computeGradients(batch).gradients.slice()
        original.applyGradients(gradients.slice(), step)
        joiner.applyGradients(gradients, step)
      }
      expect(joiner.parameterHash()).toBe(original.parameterHash())
      disposeBatch(batch)
      original.dispose()
      joiner.dispose()
    },
  )
})
