import { ConfigError } from '@ringtrain/core'
import { describeValue } from './describe-value.js'
import { at, isRecord, rejectUnknownKeys, requireFunction, requireInteger, requireNumber, specError, type SpecField } from './spec-rules.js'
import { lossNames, type LossName, type MetricSpec, type OptimizerName, type TaskSpec } from './task-spec.js'
import { validateLearningRate } from './validate-learning-rate.js'
import { validateOptimizer } from './validate-optimizer.js'
import type { TaskFields } from './define-task.js'

const specKeys = ['name', 'model', 'loss', 'optimizer', 'learningRate', 'clipNorm', 'regularization', 'metrics', 'data', 'batchSize', 'epochs', 'dropLast', 'onResize']
const metricNames = ['accuracy', 'mse', 'mae'] as const

/** The usual learning rate of each optimizer (tf.train's defaults, Keras's where tfjs has none). */
export const defaultLearningRates: Record<OptimizerName, number> = {
  sgd: 0.01,
  momentum: 0.01,
  nesterov: 0.01,
  adagrad: 0.01,
  adam: 0.001,
  adamax: 0.002,
  adadelta: 0.001,
  rmsprop: 0.001,
}

/** Checks every field of `spec` and fills in defaults. Fails with `ConfigError` naming the field. */
export function validateTask(name: string, spec: unknown): TaskFields {
  if (!isRecord(spec)) throw new ConfigError(`task '${name}': defineTask expects an object spec, got ${describeValue(spec)}.`, { task: name })
  rejectUnknownKeys({ task: name, field: 'spec' }, spec, specKeys)
  const field = (f: string): SpecField => ({ task: name, field: f })
  requireFunction(field('model'), spec.model, 'a function that returns a tf.LayersModel or { variables, apply }')
  const loss = spec.loss
  if (typeof loss !== 'function' && !lossNames.includes(loss as LossName)) {
    throw new ConfigError(`task '${name}': loss ${describeValue(loss)} is not one of ${lossNames.join(', ')}, or a function (yTrue, yPred) => scalar.`, {
      task: name,
      field: 'loss',
      got: loss,
    })
  }
  const optimizer = validateOptimizer(name, spec.optimizer)
  const learningRate = spec.learningRate === undefined ? defaultLearningRates[optimizer.name] : validateLearningRate(name, spec.learningRate)
  const clipNorm = spec.clipNorm === undefined ? undefined : requireNumber(field('clipNorm'), spec.clipNorm, { minExclusive: 0 })
  const regularization = validateRegularization(name, spec.regularization)
  const metrics = validateMetrics(name, spec.metrics)
  const data = spec.data
  if (!isRecord(data)) throw specError(field('data'), 'must be { train: () => Dataset, eval?: () => Dataset }', data)
  rejectUnknownKeys(field('data'), data, ['train', 'eval'])
  requireFunction(field('data.train'), data.train, 'a function that returns a Dataset (or a promise of one)')
  if (data.eval !== undefined) requireFunction(field('data.eval'), data.eval, 'a function that returns a Dataset (or a promise of one)')
  const batchSize = spec.batchSize === undefined ? 32 : requireInteger(field('batchSize'), spec.batchSize, 1)
  const epochs = spec.epochs === undefined ? 1 : requireInteger(field('epochs'), spec.epochs, 1)
  if (spec.dropLast !== undefined && typeof spec.dropLast !== 'boolean') throw specError(field('dropLast'), 'must be true or false', spec.dropLast)
  if (spec.onResize !== undefined) requireFunction(field('onResize'), spec.onResize, 'a function ({ worldSize, previousWorldSize, step }) => ({ batchSize?, learningRateScale? }) or nothing')
  return Object.freeze({
    name,
    model: spec.model as TaskSpec['model'],
    loss: loss as TaskSpec['loss'],
    optimizer,
    learningRate,
    clipNorm,
    regularization,
    metrics,
    data: Object.freeze({ ...data }) as TaskSpec['data'],
    batchSize,
    epochs,
    dropLast: spec.dropLast ?? false,
    onResize: spec.onResize as TaskSpec['onResize'],
  })
}

function validateRegularization(task: string, value: unknown): { l1: number; l2: number } {
  if (value === undefined) return { l1: 0, l2: 0 }
  const where: SpecField = { task, field: 'regularization' }
  if (!isRecord(value)) throw specError(where, 'must be { l1?, l2? }', value)
  rejectUnknownKeys(where, value, ['l1', 'l2'])
  const l1 = value.l1 === undefined ? 0 : requireNumber(at(where, 'l1'), value.l1, { min: 0 })
  const l2 = value.l2 === undefined ? 0 : requireNumber(at(where, 'l2'), value.l2, { min: 0 })
  return { l1, l2 }
}

function validateMetrics(task: string, value: unknown): readonly MetricSpec[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw specError({ task, field: 'metrics' }, 'must be an array', value)
  const seen = new Set<string>(['loss'])
  return value.map((metric: unknown, i) => {
    const where: SpecField = { task, field: `metrics[${i}]` }
    let metricName: string
    if (typeof metric === 'string') {
      if (!metricNames.includes(metric as (typeof metricNames)[number])) {
        throw specError(where, `must be one of ${metricNames.join(', ')} or { name, fn }`, metric)
      }
      metricName = metric
    } else if (isRecord(metric) && typeof metric.name === 'string' && metric.name !== '' && typeof metric.fn === 'function') {
      metricName = metric.name
    } else {
      throw specError(where, `must be one of ${metricNames.join(', ')} or { name, fn }`, metric)
    }
    if (seen.has(metricName)) throw specError(where, `repeats the metric name '${metricName}' (names must be unique; 'loss' is reserved)`, metricName)
    seen.add(metricName)
    return metric as MetricSpec
  })
}
