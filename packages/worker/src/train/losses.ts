import * as tf from '@tensorflow/tfjs'
import { ConfigError } from '@ringtrain/core'
import type { LossFunction, LossName } from '../task/task-spec.js'

/**
 * Built-in losses, each the mean over the batch (and, for element-wise losses, over
 * elements). Cross-entropies named like Keras take probabilities (a softmax or sigmoid
 * output layer); `softmaxCrossEntropy` and `sigmoidCrossEntropy` take raw logits.
 */
export const builtInLosses: Record<LossName, LossFunction> = {
  meanSquaredError: (yTrue, yPred) => tf.mean(tf.squaredDifference(yTrue, yPred)),
  meanAbsoluteError: (yTrue, yPred) => tf.mean(tf.abs(tf.sub(yTrue, yPred))),
  huber: (yTrue, yPred) => tf.losses.huberLoss(yTrue, yPred) as tf.Scalar,
  categoricalCrossentropy: (yTrue, yPred) => tf.mean(tf.metrics.categoricalCrossentropy(yTrue, yPred)),
  sparseCategoricalCrossentropy: (yTrue, yPred) =>
    tf.mean(tf.metrics.categoricalCrossentropy(sparseToOneHot(yTrue, yPred), yPred)),
  binaryCrossentropy: (yTrue, yPred) => tf.mean(tf.metrics.binaryCrossentropy(yTrue, yPred)),
  softmaxCrossEntropy: (yTrue, yPred) => tf.losses.softmaxCrossEntropy(yTrue, yPred) as tf.Scalar,
  sigmoidCrossEntropy: (yTrue, yPred) => tf.losses.sigmoidCrossEntropy(yTrue, yPred) as tf.Scalar,
}

/** Class indices (shape `[B]` or `[B,1]`) as one-hot rows matching `yPred`'s classes. */
export function sparseToOneHot(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Tensor {
  const classes = yPred.shape[yPred.shape.length - 1]!
  return tf.oneHot(tf.cast(tf.reshape(yTrue, [-1]), 'int32') as tf.Tensor1D, classes).toFloat()
}

/** The task's loss as a function that checks it returned a scalar. */
export function resolveLoss(task: string, loss: LossName | LossFunction): LossFunction {
  if (typeof loss !== 'function') return builtInLosses[loss]
  return (yTrue, yPred) => {
    const value = loss(yTrue, yPred)
    if (!(value instanceof tf.Tensor) || value.rank !== 0) {
      const got = value instanceof tf.Tensor ? `a tensor of shape [${value.shape.join(',')}]` : String(value)
      throw new ConfigError(`task '${task}': the loss function returned ${got}; it must return a scalar tensor (the mean over the batch).`, {
        task,
        field: 'loss',
      })
    }
    return value
  }
}
