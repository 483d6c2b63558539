/**
 * A benchmark task: an MLP of about 25 M parameters (784 → 4096 → 4096 → 1024 → 10, Adam)
 * on synthetic data, for `ringtrain bench recovery`: big enough that copying its state for
 * a checkpoint (100 MB of weights, 200 MB of Adam moments) is measurable.
 */
import { arrayDataset, defineTask, tf } from '@ringtrain/worker'

const samples = 512

function syntheticData() {
  const inputs = new Float32Array(samples * 784)
  const targets = new Float32Array(samples * 10)
  for (let i = 0; i < samples; i++) {
    for (let f = 0; f < 784; f++) inputs[i * 784 + f] = Math.sin(i * 0.13 + f * 0.07)
    targets[i * 10 + (i % 10)] = 1
  }
  return arrayDataset({ inputs, inputShape: [784], targets, targetShape: [10] })
}

export default defineTask({
  name: 'wide-mlp-25m',
  model: () =>
    tf.sequential({
      layers: [
        tf.layers.dense({ name: 'wide1', units: 4096, activation: 'relu', inputShape: [784] }),
        tf.layers.dense({ name: 'wide2', units: 4096, activation: 'relu' }),
        tf.layers.dense({ name: 'wide3', units: 1024, activation: 'relu' }),
        tf.layers.dense({ name: 'out', units: 10, activation: 'softmax' }),
      ],
    }),
  loss: 'categoricalCrossentropy',
  optimizer: 'adam',
  learningRate: 0.0001,
  batchSize: 16,
  epochs: 100,
  metrics: [],
  data: { train: syntheticData },
})
