import * as tf from '@tensorflow/tfjs'
import type { OptimizerSpec } from '../task/task-spec.js'

/**
 * The tfjs optimizer for `spec` with learning rate `learningRate` (tf.train's defaults for
 * options left out). `nesterov` is momentum with `useNesterov`; its momentum defaults to 0.9,
 * like `momentum`'s.
 */
export function createOptimizer(spec: OptimizerSpec, learningRate: number): tf.Optimizer {
  switch (spec.name) {
    case 'sgd':
      return tf.train.sgd(learningRate)
    case 'momentum':
      return tf.train.momentum(learningRate, spec.momentum ?? 0.9, false)
    case 'nesterov':
      return tf.train.momentum(learningRate, spec.momentum ?? 0.9, true)
    case 'adam':
      return tf.train.adam(learningRate, spec.beta1 ?? 0.9, spec.beta2 ?? 0.999, spec.epsilon)
    case 'adamax':
      return tf.train.adamax(learningRate, spec.beta1 ?? 0.9, spec.beta2 ?? 0.999, spec.epsilon, spec.decay ?? 0)
    case 'adagrad':
      return tf.train.adagrad(learningRate, spec.initialAccumulatorValue ?? 0.1)
    case 'adadelta':
      return tf.train.adadelta(learningRate, spec.rho ?? 0.95, spec.epsilon)
    case 'rmsprop':
      return tf.train.rmsprop(learningRate, spec.decay ?? 0.9, spec.momentum ?? 0, spec.epsilon, spec.centered ?? false)
  }
}

/**
 * Sets the rate the next `applyGradients` uses. SGD and momentum cache `-learningRate` as a
 * kept scalar (`setLearningRate` replaces it); the others read the `learningRate` field.
 */
export function setLearningRate(optimizer: tf.Optimizer, learningRate: number): void {
  if (optimizer instanceof tf.SGDOptimizer) {
    if ((optimizer as unknown as { learningRate: number }).learningRate !== learningRate) optimizer.setLearningRate(learningRate)
    return
  }
  ;(optimizer as unknown as { learningRate: number }).learningRate = learningRate
}
