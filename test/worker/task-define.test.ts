import { describe, expect, test } from 'vitest'
import type * as TF from '@tensorflow/tfjs'
import { defineTask, type TaskSpec } from '@ringtrain/worker'
import { isTask } from '@ringtrain/worker/unstable-internals-do-not-import'

const valid = (): TaskSpec => ({
  name: 'examples/foo.ts',
  model: () => ({ variables: [], apply: (x: TF.Tensor | TF.Tensor[]) => x as never }),
  loss: 'meanSquaredError',
  optimizer: 'sgd',
  data: { train: () => ({ length: 0, inputShape: [1], targetShape: [1], batch: () => ({}) as never }) },
})

function errorOf(spec: unknown): { name: string; code: string; message: string; context: Record<string, unknown> } {
  try {
    defineTask(spec as TaskSpec)
  } catch (error) {
    return error as never
  }
  throw new Error('defineTask accepted the spec')
}

describe('defineTask', () => {
  test('fills in defaults and brands the task', () => {
    const task = defineTask(valid())
    expect(isTask(task)).toBe(true)
    expect(isTask({ ...valid() })).toBe(false)
    expect(task).toMatchObject({
      name: 'examples/foo.ts',
      optimizer: { name: 'sgd' },
      learningRate: 0.01,
      batchSize: 32,
      epochs: 1,
      dropLast: false,
      clipNorm: undefined,
      regularization: { l1: 0, l2: 0 },
      metrics: [],
    })
    expect(defineTask({ ...valid(), optimizer: 'adam' }).learningRate).toBe(0.001)
    expect(Object.isFrozen(task)).toBe(true)
  })

  test('names the task by the calling file when the spec has no name', () => {
    const { name: _name, ...rest } = valid()
    expect(defineTask(rest).name).toBe('test/worker/task-define.test.ts')
  })

  test('accepts every optimizer with its options and every schedule', () => {
    const optimizers: TaskSpec['optimizer'][] = [
      'sgd',
      { name: 'momentum', momentum: 0.8 },
      { name: 'nesterov' },
      { name: 'adam', beta1: 0.8, beta2: 0.99, epsilon: 1e-7 },
      { name: 'adamax', decay: 0.1 },
      { name: 'adagrad', initialAccumulatorValue: 0.2 },
      { name: 'adadelta', rho: 0.9 },
      { name: 'rmsprop', centered: true, momentum: 0.5 },
    ]
    for (const optimizer of optimizers) expect(() => defineTask({ ...valid(), optimizer })).not.toThrow()
    const schedule: TaskSpec['learningRate'] = {
      type: 'warmup',
      warmupSteps: 10,
      then: { type: 'cosine', learningRate: 0.1, totalSteps: 100, minLearningRate: 0.001 },
    }
    expect(defineTask({ ...valid(), learningRate: schedule }).learningRate).toEqual(schedule)
  })

  const t = "task 'examples/foo.ts': "
  test.each<[string, Record<string, unknown>, string]>([
    ['an unknown optimizer', { optimizer: 'adamw' }, `${t}optimizer 'adamw' is not one of sgd, momentum, nesterov, adam, adamax, adagrad, adadelta, rmsprop.`],
    ['an unknown optimizer name in an object', { optimizer: { name: 'lamb' } }, `${t}optimizer.name 'lamb' is not one of sgd, momentum, nesterov, adam, adamax, adagrad, adadelta, rmsprop.`],
    ['an option of another optimizer', { optimizer: { name: 'sgd', momentum: 0.9 } }, `${t}optimizer.momentum is not an option here; options are name.`],
    ['beta1 out of range', { optimizer: { name: 'adam', beta1: 1 } }, `${t}optimizer.beta1 must be a finite number >= 0 and < 1, got 1.`],
    ['a non-boolean centered', { optimizer: { name: 'rmsprop', centered: 'yes' } }, `${t}optimizer.centered must be true or false, got 'yes'.`],
    ['an unknown loss', { loss: 'mse' }, `${t}loss 'mse' is not one of meanSquaredError, meanAbsoluteError, huber, categoricalCrossentropy, sparseCategoricalCrossentropy, binaryCrossentropy, softmaxCrossEntropy, sigmoidCrossEntropy, or a function (yTrue, yPred) => scalar.`],
    ['a missing model', { model: undefined }, `${t}model must be a function that returns a tf.LayersModel or { variables, apply }, got undefined.`],
    ['a negative learning rate', { learningRate: -0.1 }, `${t}learningRate must be a finite number > 0, got -0.1.`],
    ['an unknown schedule type', { learningRate: { type: 'linear' } }, `${t}learningRate.type must be one of constant, step, cosine, warmup, got 'linear'.`],
    ['a zero stepSize', { learningRate: { type: 'step', learningRate: 1, stepSize: 0, gamma: 0.5 } }, `${t}learningRate.stepSize must be an integer >= 1, got 0.`],
    ['a bad nested schedule', { learningRate: { type: 'warmup', warmupSteps: 5, then: { type: 'cosine', learningRate: 1 } } }, `${t}learningRate.then.totalSteps must be an integer >= 1, got undefined.`],
    ['a minimum above the rate', { learningRate: { type: 'cosine', learningRate: 0.1, totalSteps: 10, minLearningRate: 0.2 } }, `${t}learningRate.minLearningRate must be a finite number >= 0 and <= 0.1, got 0.2.`],
    ['a zero clipNorm', { clipNorm: 0 }, `${t}clipNorm must be a finite number > 0, got 0.`],
    ['a negative l2', { regularization: { l2: -1 } }, `${t}regularization.l2 must be a finite number >= 0, got -1.`],
    ['an unknown regularizer', { regularization: { l3: 1 } }, `${t}regularization.l3 is not an option here; options are l1, l2.`],
    ['an unknown metric', { metrics: ['accuracy', 'f1'] }, `${t}metrics[1] must be one of accuracy, mse, mae or { name, fn }, got 'f1'.`],
    ['a repeated metric', { metrics: ['mse', { name: 'mse', fn: () => 0 }] }, `${t}metrics[1] repeats the metric name 'mse' (names must be unique; 'loss' is reserved), got 'mse'.`],
    ['a missing data.train', { data: {} }, `${t}data.train must be a function that returns a Dataset (or a promise of one), got undefined.`],
    ['a fractional batchSize', { batchSize: 2.5 }, `${t}batchSize must be an integer >= 1, got 2.5.`],
    ['zero epochs', { epochs: 0 }, `${t}epochs must be an integer >= 1, got 0.`],
    ['a non-boolean dropLast', { dropLast: 1 }, `${t}dropLast must be true or false, got 1.`],
    ['a misspelt field', { batchsize: 4 }, `${t}spec.batchsize is not an option here; options are name, model, loss, optimizer, learningRate, clipNorm, regularization, metrics, data, batchSize, epochs, dropLast, onResize.`],
  ])('rejects %s with E_CONFIG and the exact rule', (_what, change, message) => {
    const error = errorOf({ ...valid(), ...change })
    expect(error.name).toBe('ConfigError')
    expect(error.code).toBe('E_CONFIG')
    expect(error.message).toBe(message)
    expect(error.context.task).toBe('examples/foo.ts')
  })
})
