/**
 * The plug-in API: a task module default-exports `defineTask({...})`, and every worker
 * loads it (`loadTask`) and builds its replica from it.
 *
 * ```ts
 * import * as tf from '@tensorflow/tfjs'
 * import { arrayDataset, defineTask } from '@ringtrain/worker'
 * export default defineTask({
 *   model: () => tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [3] })] }),
 *   loss: 'meanSquaredError',
 *   optimizer: { name: 'adam', beta1: 0.9 },
 *   learningRate: { type: 'warmup', warmupSteps: 100, then: { type: 'cosine', learningRate: 1e-3, totalSteps: 10_000 } },
 *   data: { train: () => arrayDataset(...) },
 * })
 * ```
 */
import { callerFile } from './caller-file.js'
import type { CustomModel, LearningRateSchedule, LossFunction, LossName, MetricSpec, OptimizerSpec, TaskSpec } from './task-spec.js'
import { validateTask } from './validate-task.js'

/**
 * Marks objects made by `defineTask`. A registered symbol, so that a task module that
 * resolved its own copy of this package is still recognised.
 */
export const taskBrand: unique symbol = Symbol.for('ringtrain.task') as never

/** A validated task spec with defaults filled in. Make one with `defineTask`. */
export interface Task {
  readonly [taskBrand]: true
  /** `spec.name`, or the file that called `defineTask`. */
  readonly name: string
  readonly model: () => import('@tensorflow/tfjs').LayersModel | CustomModel
  readonly loss: LossName | LossFunction
  readonly optimizer: OptimizerSpec
  readonly learningRate: number | LearningRateSchedule
  readonly clipNorm: number | undefined
  readonly regularization: { readonly l1: number; readonly l2: number }
  readonly metrics: readonly MetricSpec[]
  readonly data: TaskSpec['data']
  readonly batchSize: number
  readonly epochs: number
  readonly dropLast: boolean
  readonly onResize: TaskSpec['onResize']
}

/** A task's fields without the brand. */
export type TaskFields = Omit<Task, typeof taskBrand>

/**
 * Validates `spec` and returns the task a worker runs. Throws `ConfigError` (`E_CONFIG`)
 * naming the task, the field, the rule and the value, e.g.
 * `task 'examples/foo.ts': optimizer 'adamw' is not one of sgd, momentum, ...`.
 * Pure: builds no model and loads no data (those run later, on each worker).
 */
export function defineTask(spec: TaskSpec): Task {
  const name = typeof spec?.name === 'string' && spec.name !== '' ? spec.name : (callerFile(import.meta.url) ?? 'unnamed task')
  const task = validateTask(name, spec)
  return Object.freeze({ ...task, [taskBrand]: true as const })
}

/** Whether `value` was made by `defineTask` (in any copy of this package). */
export function isTask(value: unknown): value is Task {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[taskBrand] === true
}
