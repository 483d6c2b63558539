/**
 * The plug-in API without tf.layers: raw variables, a forward function and a custom loss.
 * A two-layer network fits y = sin(3x) with a Huber loss written by hand.
 * Run: pnpm ringtrain launch -n 2 examples/custom-model
 */
import * as tf from '@tensorflow/tfjs'
import { arrayDataset, defineTask } from '@ringtrain/worker'

const hidden = 32

function sine(length: number, offset: number) {
  const inputs = new Float32Array(length)
  const targets = new Float32Array(length)
  for (let i = 0; i < length; i++) {
    const x = -1 + (2 * ((i * 7919 + offset) % length)) / length
    inputs[i] = x
    targets[i] = Math.sin(3 * x)
  }
  return arrayDataset({ inputs, inputShape: [1], targets, targetShape: [1] })
}

/** Huber loss with delta 0.5: quadratic near zero, linear in the tails. */
function huber(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const error = tf.abs(tf.sub(yTrue, yPred))
    const quadratic = tf.minimum(error, 0.5)
    const linear = tf.sub(error, quadratic)
    return tf.mean(tf.add(tf.mul(0.5, tf.square(quadratic)), tf.mul(0.5, linear))) as tf.Scalar
  })
}

export default defineTask({
  name: 'custom-model',
  model: () => {
    const w1 = tf.variable(tf.randomNormal([1, hidden], 0, 1, 'float32', 1))
    const b1 = tf.variable(tf.zeros([hidden]))
    const w2 = tf.variable(tf.randomNormal([hidden, 1], 0, 1 / Math.sqrt(hidden), 'float32', 2))
    const b2 = tf.variable(tf.zeros([1]))
    return {
      variables: { w1, b1, w2, b2 },
      apply: (x: tf.Tensor | tf.Tensor[]) => tf.add(tf.matMul(tf.tanh(tf.add(tf.matMul(x as tf.Tensor2D, w1), b1)), w2), b2),
    }
  },
  loss: huber,
  optimizer: { name: 'momentum', momentum: 0.9 },
  learningRate: { type: 'warmup', warmupSteps: 20, then: { type: 'cosine', learningRate: 0.05, totalSteps: 640, minLearningRate: 0.005 } },
  batchSize: 32,
  epochs: 20,
  metrics: ['mse'],
  data: { train: () => sine(1024, 0), eval: () => sine(256, 3) },
})
