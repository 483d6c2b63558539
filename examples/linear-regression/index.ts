/**
 * y = 3x + 2 plus noise, learned by one dense unit with plain SGD.
 * Run: pnpm ringtrain launch -n 2 examples/linear-regression
 * The learned kernel and bias end near 3 and 2 (see OUT/summary.json and OUT/model/).
 */
import * as tf from '@tensorflow/tfjs'
import { arrayDataset, defineTask } from '@ringtrain/worker'

/** Samples of y = 3x + 2 + noise, x in [-1, 1], from a seeded generator (same on every rank). */
function line(length: number, seed: number) {
  let state = seed >>> 0
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const inputs = new Float32Array(length)
  const targets = new Float32Array(length)
  for (let i = 0; i < length; i++) {
    const x = random() * 2 - 1
    inputs[i] = x
    targets[i] = 3 * x + 2 + (random() - 0.5) * 0.1
  }
  return arrayDataset({ inputs, inputShape: [1], targets, targetShape: [1] })
}

export default defineTask({
  name: 'linear-regression',
  model: () => tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] }),
  loss: 'meanSquaredError',
  optimizer: 'sgd',
  learningRate: 0.1,
  batchSize: 32,
  epochs: 10,
  metrics: ['mse'],
  data: { train: () => line(1024, 1), eval: () => line(256, 2) },
})
