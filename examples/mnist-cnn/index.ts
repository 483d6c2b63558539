/**
 * A small conv net on the embedded MNIST digits: conv 32 3×3 → maxpool → conv 64 3×3 →
 * maxpool → dense 128 → dense 10. On wasm it trains thanks to ringtrain's kernel pack.
 * Run: pnpm ringtrain launch -n 2 examples/mnist-cnn
 */
import * as tf from '@tensorflow/tfjs'
import { defineTask, mnistDataset } from '@ringtrain/worker'

export function cnn(): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', inputShape: [28, 28, 1] }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 64, kernelSize: 3, activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 128, activation: 'relu' }),
      tf.layers.dense({ units: 10, activation: 'softmax' }),
    ],
  })
}

export default defineTask({
  name: 'mnist-cnn',
  model: cnn,
  loss: 'categoricalCrossentropy',
  optimizer: 'adam',
  learningRate: 0.001,
  batchSize: 32,
  epochs: 1,
  metrics: ['accuracy'],
  data: {
    train: () => mnistDataset({ split: 'train', flatten: false }),
    eval: () => mnistDataset({ split: 'test', flatten: false }),
  },
})
