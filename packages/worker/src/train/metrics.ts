/**
 * Evaluation metrics as exact sums over a batch (`{ sum, count }`), never averages, so
 * that the sums of all ranks' shards add up to the exact metric of the whole set.
 */
import * as tf from '@tensorflow/tfjs'
import type { MetricSpec } from '../task/task-spec.js'
import { sparseToOneHot } from './losses.js'

/** What each metric sums, as a tensor to read; `count` is known from shapes. */
export interface MetricTerm {
  name: string
  sum: tf.Tensor
  count: number
}

/**
 * - `accuracy`: correct predictions / samples. With several classes, argmax of `yPred`
 *   against argmax of one-hot `yTrue` (or against class indices when `yTrue` has one column
 *   or is 1-D); with one output column, `yPred > 0.5` against `yTrue`.
 * - `mse`, `mae`: summed squared / absolute errors over all elements / element count
 *   (class-index targets are compared as one-hot rows).
 * - custom `{ name, fn }`: the sum of `fn`'s values / their number.
 */
export function metricTerm(metric: MetricSpec, yTrue: tf.Tensor, yPred: tf.Tensor): MetricTerm {
  if (metric === 'accuracy') return { name: 'accuracy', sum: tf.sum(correct(yTrue, yPred)), count: yPred.shape[0]! }
  if (metric === 'mse') return { name: 'mse', sum: tf.sum(tf.squaredDifference(alignTargets(yTrue, yPred), yPred)), count: yPred.size }
  if (metric === 'mae') return { name: 'mae', sum: tf.sum(tf.abs(tf.sub(alignTargets(yTrue, yPred), yPred))), count: yPred.size }
  const values = metric.fn(yTrue, yPred)
  return { name: metric.name, sum: tf.sum(values), count: values.size }
}

/** Class indices (`[B]` or `[B,1]`) against several output columns become one-hot rows; same-size targets take `yPred`'s shape. */
function alignTargets(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  const classes = yPred.rank > 1 ? yPred.shape[yPred.rank - 1]! : 1
  if (classes > 1 && yTrue.size * classes === yPred.size) return sparseToOneHot(yTrue, yPred)
  return yTrue.size === yPred.size ? tf.reshape(yTrue, yPred.shape) : yTrue
}

function correct(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  const classes = yPred.rank > 1 ? yPred.shape[yPred.rank - 1]! : 1
  if (classes === 1) {
    const predicted = tf.cast(tf.greater(tf.reshape(yPred, [-1]), 0.5), 'float32')
    return tf.cast(tf.equal(predicted, tf.reshape(yTrue, [-1])), 'float32')
  }
  const predicted = tf.argMax(yPred, -1)
  const sparse = yTrue.rank === 1 || yTrue.shape[yTrue.rank - 1] === 1
  const actual = sparse ? tf.cast(tf.reshape(yTrue, [-1]), 'int32') : tf.argMax(yTrue, -1)
  return tf.cast(tf.equal(predicted, actual), 'float32')
}
