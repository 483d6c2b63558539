/**
 * The README's main job: an MLP 784-512-256-10 on the embedded MNIST digits, Adam.
 * Run: pnpm ringtrain launch -n 2 examples/mnist-mlp
 */
import * as tf from '@tensorflow/tfjs'
import { defineTask, mnistDataset } from '@ringtrain/worker'

export function mlp(): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.dense({ units: 512, activation: 'relu', inputShape: [784] }),
      tf.layers.dense({ units: 256, activation: 'relu' }),
      tf.layers.dense({ units: 10, activation: 'softmax' }),
    ],
  })
}

export default defineTask({
  name: 'mnist-mlp',
  model: mlp,
  loss: 'categoricalCrossentropy',
  optimizer: 'adam',
  learningRate: 0.001,
  batchSize: 64,
  epochs: 3,
  metrics: ['accuracy'],
  data: {
    train: () => mnistDataset({ split: 'train', flatten: true }),
    eval: () => mnistDataset({ split: 'test', flatten: true }),
  },
})
