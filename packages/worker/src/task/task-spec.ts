/**
 * What a user writes: the spec a task module passes to `defineTask`. Everything here must
 * be a pure function of the spec (and the step), identical on every rank, so that replicas
 * that apply the same averaged gradient stay identical.
 */
import type * as tf from '@tensorflow/tfjs'
import type { Dataset } from '../data/dataset.js'

/**
 * A model built from raw variables and a forward function. Prefer a record: its keys name
 * the variables in the gradient layout. An array uses each `tf.Variable`'s own `name`.
 */
export interface CustomModel {
  variables: tf.Variable[] | Record<string, tf.Variable>
  /** Forward pass: `x` is the batch input (one tensor, or an array for several inputs). */
  apply(x: tf.Tensor | tf.Tensor[]): tf.Tensor
}

/** Built-in losses. Each is a mean over the batch. `*FromLogits`-style names take raw scores. */
export const lossNames = [
  'meanSquaredError',
  'meanAbsoluteError',
  'huber',
  'categoricalCrossentropy',
  'sparseCategoricalCrossentropy',
  'binaryCrossentropy',
  'softmaxCrossEntropy',
  'sigmoidCrossEntropy',
] as const
export type LossName = (typeof lossNames)[number]
/** A custom loss: returns a scalar, the mean over the batch. */
export type LossFunction = (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Scalar

export const optimizerNames = ['sgd', 'momentum', 'nesterov', 'adam', 'adamax', 'adagrad', 'adadelta', 'rmsprop'] as const
export type OptimizerName = (typeof optimizerNames)[number]

/** An optimizer with options; names and defaults follow `tf.train.*`. */
export type OptimizerSpec =
  | { name: 'sgd' }
  | { name: 'momentum' | 'nesterov'; momentum?: number }
  | { name: 'adam'; beta1?: number; beta2?: number; epsilon?: number }
  | { name: 'adamax'; beta1?: number; beta2?: number; epsilon?: number; decay?: number }
  | { name: 'adagrad'; initialAccumulatorValue?: number }
  | { name: 'adadelta'; rho?: number; epsilon?: number }
  | { name: 'rmsprop'; decay?: number; momentum?: number; epsilon?: number; centered?: boolean }

/**
 * A learning rate as a pure function of the optimizer step (0-based):
 * - `constant`: `learningRate`.
 * - `step`: `learningRate · gamma^floor(step / stepSize)`.
 * - `cosine`: from `learningRate` down to `minLearningRate` (default 0) along half a cosine
 *   over `totalSteps`, then stays at `minLearningRate`.
 * - `warmup`: linear from `base/warmupSteps` up to `base` over the first `warmupSteps`
 *   steps, where `base` is `then` at its step 0; afterwards `then`, started at step 0.
 */
export type LearningRateSchedule =
  | { type: 'constant'; learningRate: number }
  | { type: 'step'; learningRate: number; stepSize: number; gamma: number }
  | { type: 'cosine'; learningRate: number; totalSteps: number; minLearningRate?: number }
  | { type: 'warmup'; warmupSteps: number; then: number | LearningRateSchedule }

/** A metric given by name, or a custom one: `fn` returns one value per sample (or element). */
export type MetricSpec = 'accuracy' | 'mse' | 'mae' | { name: string; fn: (yTrue: tf.Tensor, yPred: tf.Tensor) => tf.Tensor }

export interface TaskSpec {
  /** Shown in messages; defaults to the file that called `defineTask`. */
  name?: string
  /** Builds the model. Called once per replica, with tfjs's random initializers seeded. */
  model: () => tf.LayersModel | CustomModel
  loss: LossName | LossFunction
  optimizer: OptimizerName | OptimizerSpec
  /** Default: the optimizer's usual rate (0.01 for sgd, momentum, nesterov, adagrad; 0.001 otherwise; 0.002 for adamax). */
  learningRate?: number | LearningRateSchedule
  /** Clip the averaged gradient to this global L2 norm before the optimizer step. */
  clipNorm?: number
  /**
   * Penalty added to the loss: `l1·Σ|w| + l2·Σw²` (Keras convention) over the kernels of a
   * LayersModel (weights named `…kernel` or `…embeddings`, not biases) or over every trainable
   * variable of a `CustomModel`.
   */
  regularization?: { l1?: number; l2?: number }
  metrics?: MetricSpec[]
  data: { train: () => Dataset | Promise<Dataset>; eval?: () => Dataset | Promise<Dataset> }
  /** Per-rank batch size. Default 32. */
  batchSize?: number
  /** Default 1. */
  epochs?: number
  /** Drop each epoch's last incomplete batch. Default false, as PyTorch's DataLoader. */
  dropLast?: boolean
  /**
   * Called on every resize of an elastic job (and on a resume with another worker count),
   * on every rank, before the first step with the new world. Return nothing to keep the
   * per-rank batch (the global batch changes with the world), or a per-rank `batchSize` (to
   * keep the global batch) and a `learningRateScale` applied to the task's rate from then on.
   *
   *   onResize: ({ worldSize }) => ({ batchSize: 96 / worldSize, learningRateScale: 1 })
   */
  onResize?: (change: ResizeChange) => ResizeAnswer | void
}

/** What `onResize` is told. */
export interface ResizeChange {
  worldSize: number
  previousWorldSize: number
  /** The optimizer step the new world starts at. */
  step: number
}

/** What `onResize` may return. */
export interface ResizeAnswer {
  /** Per-rank batch size from now on (an integer ≥ 1). */
  batchSize?: number
  /** Multiplies the task's learning rate (and schedule) from now on (> 0). */
  learningRateScale?: number
}
