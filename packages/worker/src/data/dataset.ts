/**
 * A data set a task trains or evaluates on: indexed samples that become tensors in batches.
 * Loaders (in-memory arrays, CSV, JSON lines, IDX, MNIST) all return this shape.
 */
import type * as tf from '@tensorflow/tfjs'
import type { StoredSamples } from './stored-samples.js'

export interface Batch {
  /** Model input: one tensor, or one per input of a multi-input model. Leading dim = batch. */
  x: tf.Tensor | tf.Tensor[]
  /** Targets. Leading dim = batch. */
  y: tf.Tensor
}

export interface Dataset {
  /** Number of samples. */
  readonly length: number
  /** Shape of one sample's input (without the batch dim), e.g. [784] or [28, 28, 1]. */
  readonly inputShape: readonly number[]
  /** Shape of one sample's target (without the batch dim), e.g. [10] (one-hot) or [1]. */
  readonly targetShape: readonly number[]
  /**
   * Tensors for these sample indices, in this order, created on the current tfjs backend
   * (never on another backend: tensors made on cpu and read by wasm kernels can be corrupted).
   * The caller disposes them.
   */
  batch(indices: ArrayLike<number>): Batch
  /**
   * The samples as stored, before they become float32 (every built-in loader has it; a
   * Dataset written by hand may leave it out). `ringtrain coordinator --serve-data` reads
   * rows through it and sends them to the workers, which decode them as `batch()` does.
   */
  readonly stored?: StoredSamples
}
