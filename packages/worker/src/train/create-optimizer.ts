import * as tf from '@tensorflow/tfjs'
import type { OptimizerName, OptimizerSpec } from '../task/task-spec.js'

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
 * Sets the rate the next `applyGradients` of `optimizer` (made by `createOptimizer` for an
 * optimizer named `name`) uses. Every tfjs optimizer reads its `learningRate` field at each
 * step (tfjs-core 4.22), except SGD and momentum, which cache `-learningRate` as a kept
 * scalar that only their `setLearningRate` replaces. The others have no `setLearningRate`.
 *
 * Decided by name, not by `instanceof tf.SGDOptimizer`: tfjs's `Optimizer` defines
 * `Symbol.hasInstance` by duck typing (any object with `minimize`, `computeGradients` and
 * `applyGradients`), and its subclasses inherit it, so every optimizer is an "SGDOptimizer".
 */
export function setLearningRate(optimizer: tf.Optimizer, name: OptimizerName, learningRate: number): void {
  const fields = optimizer as unknown as { learningRate: number; setLearningRate?(rate: number): void }
  if (fields.learningRate === learningRate) return
  if (name === 'sgd' || name === 'momentum' || name === 'nesterov') (optimizer as tf.SGDOptimizer).setLearningRate(learningRate)
  else fields.learningRate = learningRate
}
