import * as tf from '@tensorflow/tfjs'
import type { NamedVariable } from './model-handle.js'

/**
 * `l1·Σ|w| + l2·Σw²` over the weights marked `regularized` (Keras's `l1_l2`, without a ½).
 * Its gradient is `l1·sign(w) + 2·l2·w`. It is added to each rank's loss; since every rank
 * has the same weights, the averaged gradient carries exactly one copy of it.
 */
export function regularizationLoss(weights: readonly NamedVariable[], l1: number, l2: number): tf.Scalar {
  // Runs inside variableGrads' tidy: intermediates are released there.
  let total: tf.Scalar = tf.scalar(0)
  for (const { variable, regularized } of weights) {
    if (!regularized) continue
    if (l1 > 0) total = tf.add(total, tf.mul(l1, tf.sum(tf.abs(variable))))
    if (l2 > 0) total = tf.add(total, tf.mul(l2, tf.sum(tf.square(variable))))
  }
  return total
}
