/**
 * One view of the two kinds of model a task can build: a `tf.LayersModel`, or a
 * `CustomModel` (raw variables and a forward function).
 */
import * as tf from '@tensorflow/tfjs'
import { ConfigError } from '@ringtrain/core'
import type { CustomModel } from '../task/task-spec.js'
import { describeValue } from '../task/describe-value.js'

/** A weight with the name it has in the gradient layout and in a saved model. */
export interface NamedVariable {
  readonly name: string
  readonly variable: tf.Variable
  /** Whether `regularization` applies to it. */
  readonly regularized: boolean
}

export interface ModelHandle {
  /** Trainable weights in layout order (the order the model lists them). */
  readonly trainable: readonly NamedVariable[]
  /** Weights the optimizer does not touch (e.g. batch-norm moving statistics). */
  readonly nonTrainable: readonly NamedVariable[]
  /** The LayersModel, for `tf.loadLayersModel`-compatible saving; absent for a CustomModel. */
  readonly layersModel?: tf.LayersModel
  forward(x: tf.Tensor | tf.Tensor[], training: boolean): tf.Tensor
}

/**
 * Wraps what `task.model()` returned. Layout names: a LayersModel's weights keep the names
 * they have in `model.json` (`dense_Dense1/kernel`: automatic layer names count the layers
 * the process made before, so name layers when one process builds several models); a
 * CustomModel's are the record keys, or each `tf.Variable`'s `name` for an array.
 * Fails with `ConfigError` when the value is neither, or has no trainable weights.
 */
export function wrapModel(task: string, model: unknown): ModelHandle {
  const handle = isLayersModel(model) ? wrapLayersModel(model) : isCustomModel(model) ? wrapCustomModel(model) : undefined
  if (handle === undefined) {
    throw new ConfigError(
      `task '${task}': model() must return a tf.LayersModel or { variables, apply }, got ${describeValue(model)}.`,
      { task, field: 'model' },
    )
  }
  if (handle.trainable.length === 0) {
    throw new ConfigError(
      `task '${task}': model() returned a model without trainable weights; give the first layer an inputShape so that it is built, or mark variables trainable.`,
      { task, field: 'model' },
    )
  }
  return handle
}

function isLayersModel(model: unknown): model is tf.LayersModel {
  return model instanceof tf.LayersModel || (typeof model === 'object' && model !== null && 'trainableWeights' in model && 'layers' in model)
}

function isCustomModel(model: unknown): model is CustomModel {
  return typeof model === 'object' && model !== null && 'variables' in model && typeof (model as CustomModel).apply === 'function'
}

/** Keras regularizes kernels and embeddings, never biases or normalization parameters. */
const regularizedWeight = /(kernel|embeddings)(_\d+)?$/

function wrapLayersModel(model: tf.LayersModel): ModelHandle {
  const named = (weights: tf.LayerVariable[]): NamedVariable[] =>
    weights.map((w) => ({ name: w.originalName, variable: w.read() as tf.Variable, regularized: regularizedWeight.test(w.originalName) }))
  return {
    trainable: named(model.trainableWeights),
    nonTrainable: named(model.nonTrainableWeights),
    layersModel: model,
    forward: (x, training) => {
      const y = model.apply(x, { training })
      if (Array.isArray(y)) throw new ConfigError(`a model with ${y.length} outputs cannot be trained yet; build one with a single output.`)
      return y as tf.Tensor
    },
  }
}

function wrapCustomModel(model: CustomModel): ModelHandle {
  const pairs: [string, tf.Variable][] = Array.isArray(model.variables)
    ? model.variables.map((v) => [v.name, v])
    : Object.entries(model.variables)
  const all = pairs.map(([name, variable]) => ({ name, variable, regularized: true }))
  return {
    trainable: all.filter((v) => v.variable.trainable),
    nonTrainable: all.filter((v) => !v.variable.trainable).map((v) => ({ ...v, regularized: false })),
    forward: (x) => model.apply(x),
  }
}
