/**
 * One rank's model replica: turns a task into gradients and optimizer steps.
 *
 * One training step, as the training loop drives it (docs/design.md, "One training step"):
 *   1. `computeGradients(batch)`: loss and gradients of this rank's batch, written into
 *      one flat buffer in `layout` order (the same buffer every step).
 *   2. The loop all-reduces that buffer (average over ranks).
 *   3. `applyGradients(averaged, step)`: clip, learning rate at `step`, optimizer step.
 * Every rank applies the same bytes with the same optimizer state, so replicas that start
 * identical (rank 0 broadcasts `readWeights()`) stay bitwise identical.
 */
import * as tf from '@tensorflow/tfjs'
import { clipByGlobalNorm, createLayout, hashBytes, type GradientLayout, type MetricSum } from '@ringtrain/core'
import type { Batch } from '../data/dataset.js'
import type { Task } from '../task/define-task.js'
import type { LearningRateSchedule, LossFunction } from '../task/task-spec.js'
import { requireNumber } from '../task/spec-rules.js'
import { assignVariablesFromFlat, readVariablesInto, scalarValue, tensorsFromFlat, writeTensorsInto } from '../tfjs-adapter.js'
import { modelFiles, modelJsonWithoutWeights, saveModel, type SavedModelSource } from '../checkpoint/save-model.js'
import { createOptimizer, setLearningRate } from './create-optimizer.js'
import { learningRateAt, withBaseLearningRate } from './learning-rate-at.js'
import { resolveLoss } from './losses.js'
import { metricTerm } from './metrics.js'
import { readOptimizerState, writeOptimizerState, type OptimizerState } from './optimizer-state.js'
import { wrapModel, type ModelHandle } from './model-handle.js'
import { regularizationLoss } from './regularization-loss.js'
import { withSeededRandom } from './with-seeded-random.js'
import { useFusedAdam } from '../backends/fused-adam.js'

/** Floats after the gradients in `reduceBuffer`. */
export const CONTROL_SLOTS = 2

export interface ReplicaOptions {
  /**
   * Sets the base rate of the task's schedule (`--lr`): warm-up and decay keep their shape
   * and scale with it (see `withBaseLearningRate`).
   */
  baseLearningRate?: number
  /** Seeds tfjs's initializers while the model is built (see Note [Seeded initializers]). Default 0. */
  seed?: number
}

export class Replica {
  /** Trainable weights in a fixed order: what `computeGradients` fills and `applyGradients` reads. */
  readonly layout: GradientLayout
  /** All weights: `layout`'s, then the non-trainable ones. What `readWeights` returns. */
  readonly weightsLayout: GradientLayout
  /**
   * The non-trainable weights alone ("buffers", as DDP calls them: batch-norm moving
   * statistics). Each rank updates them from its own batches; see `readBuffers`.
   */
  readonly buffersLayout: GradientLayout
  private readonly bufferVariables: tf.Variable[]
  private readonly gradients: Float32Array
  /**
   * What the ring all-reduces each step: the gradients (`gradients` is a view of its start)
   * and, after them, CONTROL_SLOTS floats the training loop uses to agree on decisions
   * without another collective (see train-loop.ts, Note [Control slots]).
   */
  readonly reduceBuffer: Float32Array
  private readonly trainableVariables: tf.Variable[]
  private readonly allVariables: tf.Variable[]
  private readonly loss: LossFunction
  /** Takes the fused Adam update off this replica's optimizer again (see `useFusedAdam`). */
  private readonly removeFusedAdam: () => void

  private constructor(
    readonly task: Task,
    private readonly model: ModelHandle,
    private readonly optimizer: tf.Optimizer,
    private readonly learningRate: number | LearningRateSchedule,
  ) {
    const all = [...model.trainable, ...model.nonTrainable]
    this.layout = createLayout(model.trainable.map((w) => ({ name: w.name, shape: w.variable.shape })))
    this.weightsLayout = createLayout(all.map((w) => ({ name: w.name, shape: w.variable.shape })))
    this.buffersLayout = createLayout(model.nonTrainable.map((w) => ({ name: w.name, shape: w.variable.shape })))
    this.bufferVariables = model.nonTrainable.map((w) => w.variable)
    this.trainableVariables = model.trainable.map((w) => w.variable)
    this.allVariables = all.map((w) => w.variable)
    this.reduceBuffer = new Float32Array(this.layout.length + CONTROL_SLOTS)
    this.gradients = this.reduceBuffer.subarray(0, this.layout.length)
    this.loss = resolveLoss(task.name, task.loss)
    // Adam on wasm with the kernel pack: one SIMD pass per variable instead of 13 kernels,
    // bit for bit tfjs's numbers. Installed on this optimizer only; dispose() removes it.
    this.removeFusedAdam = useFusedAdam(optimizer)
  }

  /**
   * Builds the task's model (initializers seeded with `options.seed`) and its optimizer.
   * Fails with `ConfigError` if the model or an overriding learning rate is invalid.
   */
  static async create(task: Task, options: ReplicaOptions = {}): Promise<Replica> {
    const learningRate = options.baseLearningRate === undefined
      ? task.learningRate
      : withBaseLearningRate(task.learningRate, requireNumber({ task: task.name, field: '--lr' }, options.baseLearningRate, { minExclusive: 0 }))
    const model = wrapModel(task.name, withSeededRandom(options.seed ?? 0, () => task.model()))
    const optimizer = createOptimizer(task.optimizer, learningRateAt(learningRate, 0))
    return new Replica(task, model, optimizer, learningRate)
  }

  /**
   * Loss (batch mean plus regularization) and gradients of `batch`. The returned buffer is
   * owned by the replica and overwritten by the next call: all-reduce it in place, then
   * pass it to `applyGradients`. Does not dispose the batch.
   */
  computeGradients(batch: Batch): { loss: number; gradients: Float32Array } {
    const { value, grads } = tf.variableGrads(() => this.lossOf(batch), this.trainableVariables)
    try {
      writeTensorsInto(this.trainableVariables.map((v) => grads[v.name]), this.layout, this.gradients)
      return { loss: scalarValue(value), gradients: this.gradients }
    } finally {
      tf.dispose([value, ...Object.values(grads)])
    }
  }

  /**
   * Applies the averaged gradient as optimizer step `step` (0-based; sets the learning rate
   * from the schedule) and returns that rate. With `clipNorm`, first scales `averaged` in
   * place to that global norm.
   */
  applyGradients(averaged: Float32Array, step: number): number {
    if (this.task.clipNorm !== undefined) clipByGlobalNorm(averaged, this.task.clipNorm)
    const learningRate = this.learningRateAt(step)
    setLearningRate(this.optimizer, this.task.optimizer.name, learningRate)
    const tensors = tensorsFromFlat(this.layout, averaged)
    try {
      // An array, not a map: Adam and friends keep their slots by position in this list.
      this.optimizer.applyGradients(this.trainableVariables.map((v, i) => ({ name: v.name, tensor: tensors[i]! })))
    } finally {
      tf.dispose(tensors)
    }
    return learningRate
  }

  /** The learning rate optimizer step `step` uses. */
  learningRateAt(step: number): number {
    const rate = learningRateAt(this.learningRate, step)
    return this.learningRateScale === 1 ? rate : rate * this.learningRateScale
  }

  /** Multiplies the schedule's rate from now on (a task's `onResize` answer); 1 by default. */
  learningRateScale = 1

  /**
   * All weights in `weightsLayout` order: trainable, then non-trainable (batch-norm moving
   * statistics), so that rank 0's broadcast makes the whole model identical.
   */
  readWeights(): Float32Array {
    const out = new Float32Array(this.weightsLayout.length)
    readVariablesInto(this.allVariables, this.weightsLayout, out)
    return out
  }

  /** Sets all weights from a buffer in `weightsLayout` order (from `readWeights`). Copies. */
  writeWeights(flat: Float32Array): void {
    assignVariablesFromFlat(this.allVariables, this.weightsLayout, flat)
  }

  /**
   * The buffers in `buffersLayout` order. Workers broadcast rank 0's after every step, as
   * DDP does by default (`broadcast_buffers=True`), so replicas stay bitwise identical.
   */
  readBuffers(): Float32Array {
    const out = new Float32Array(this.buffersLayout.length)
    readVariablesInto(this.bufferVariables, this.buffersLayout, out)
    return out
  }

  /** Sets the buffers from a buffer in `buffersLayout` order (from `readBuffers`). Copies. */
  writeBuffers(flat: Float32Array): void {
    assignVariablesFromFlat(this.bufferVariables, this.buffersLayout, flat)
  }

  /** The optimizer's iteration count and slots, to send with the weights to a joining rank. */
  readOptimizerState(): Promise<OptimizerState> {
    return readOptimizerState(this.optimizer)
  }

  /** Takes another replica's optimizer state (same task). With `writeWeights`, makes this replica step identically. */
  writeOptimizerState(state: OptimizerState): Promise<void> {
    return writeOptimizerState(this.optimizer, state)
  }

  /**
   * Hash of every weight's bytes (FNV-1a 64, hex), buffers included. Equal on two ranks
   * exactly when their replicas are bitwise identical; workers keep buffers identical by
   * broadcasting rank 0's after every step (see `readBuffers`).
   */
  parameterHash(): string {
    return hashBytes(this.readWeights())
  }

  /**
   * Exact sums over `batch` for `loss` (batch mean × batch size, no regularization) and each
   * of the task's metrics: add sums across batches and ranks, divide once at the end.
   */
  evaluate(batch: Batch): Record<string, MetricSum> {
    const result: Record<string, MetricSum> = {}
    tf.tidy(() => {
      const yPred = this.model.forward(batch.x, false)
      const samples = yPred.shape[0] ?? 1
      result.loss = { sum: scalarValue(this.loss(batch.y, yPred)) * samples, count: samples }
      for (const metric of this.task.metrics) {
        const term = metricTerm(metric, batch.y, yPred)
        result[term.name] = { sum: scalarValue(term.sum), count: term.count }
      }
    })
    return result
  }

  /** The model's output for `x` in inference mode (dropout off). The caller disposes it. */
  predict(x: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => this.model.forward(x, false))
  }

  /** Writes the model to `dir` atomically (see `saveModel`). */
  async saveModel(dir: string): Promise<void> {
    return saveModel(this.savedModelSource(), dir)
  }

  /**
   * A copy of everything a checkpoint needs, taken now (the caller writes it in the
   * background): all weights in `weightsLayout` order, the optimizer's state, and model.json
   * without weights (made once per replica).
   */
  async snapshot(): Promise<{ weights: Float32Array; optimizer: OptimizerState; modelJson: Record<string, unknown>; weightSpecs: { name: string; shape: number[] }[] }> {
    this.modelJsonTemplate ??= modelJsonWithoutWeights(this.savedModelSource())
    const weights = this.readWeights()
    const optimizer = await this.readOptimizerState()
    const weightSpecs = this.weightsLayout.entries.map((e) => ({ name: e.name, shape: [...e.shape] }))
    return { weights, optimizer, modelJson: await this.modelJsonTemplate, weightSpecs }
  }

  /** The files of the trained model as `saveModel` writes them (for rank 0 to stream them). */
  modelFiles(): Promise<[string, Uint8Array][]> {
    return modelFiles(this.savedModelSource())
  }

  /** The optimizer's name in the task (sgd, momentum, adam, …), for checkpoints. */
  get optimizerName(): string {
    return this.task.optimizer.name
  }

  private modelJsonTemplate: Promise<Record<string, unknown>> | undefined

  private savedModelSource(): SavedModelSource {
    const { layersModel } = this.model
    if (layersModel) return { layersModel }
    return { weights: [...this.model.trainable, ...this.model.nonTrainable].map((w) => ({ name: w.name, tensor: w.variable })) }
  }

  /** Releases the optimizer's slots and the model's weights. */
  dispose(): void {
    this.removeFusedAdam()
    this.optimizer.dispose()
    if (this.model.layersModel) this.model.layersModel.dispose()
    else tf.dispose(this.allVariables)
  }

  private lossOf(batch: Batch): tf.Scalar {
    const yPred = this.model.forward(batch.x, true)
    const dataLoss = this.loss(batch.y, yPred)
    const { l1, l2 } = this.task.regularization
    if (l1 === 0 && l2 === 0) return dataLoss
    return tf.add(dataLoss, regularizationLoss(this.model.trainable, l1, l2))
  }
}
