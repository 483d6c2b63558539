import { ConfigError } from '@ringtrain/core'
import { optimizerNames, type OptimizerName, type OptimizerSpec } from './task-spec.js'
import { at, isRecord, rejectUnknownKeys, requireNumber, specError, type SpecField } from './spec-rules.js'
import { describeValue } from './describe-value.js'

/** The options each optimizer takes, besides `name` (the learning rate is separate). */
export const optimizerOptions: Record<OptimizerName, readonly string[]> = {
  sgd: [],
  momentum: ['momentum'],
  nesterov: ['momentum'],
  adam: ['beta1', 'beta2', 'epsilon'],
  adamax: ['beta1', 'beta2', 'epsilon', 'decay'],
  adagrad: ['initialAccumulatorValue'],
  adadelta: ['rho', 'epsilon'],
  rmsprop: ['decay', 'momentum', 'epsilon', 'centered'],
}

/** Checks `spec.optimizer` and returns it in object form (`'adam'` → `{ name: 'adam' }`). */
export function validateOptimizer(task: string, value: unknown): OptimizerSpec {
  const where: SpecField = { task, field: 'optimizer' }
  const spec = typeof value === 'string' ? { name: value } : value
  if (!isRecord(spec)) throw specError(where, `must be one of ${optimizerNames.join(', ')} or { name, ...options }`, value)
  const name = spec.name
  if (!optimizerNames.includes(name as OptimizerName)) {
    const field = typeof value === 'string' ? 'optimizer' : 'optimizer.name'
    throw new ConfigError(`task '${task}': ${field} ${describeValue(name)} is not one of ${optimizerNames.join(', ')}.`, {
      task,
      field,
      got: name,
    })
  }
  const options = optimizerOptions[name as OptimizerName]
  rejectUnknownKeys(where, spec, ['name', ...options])
  for (const key of options) {
    const option = spec[key]
    if (option === undefined) continue
    if (key === 'centered') {
      if (typeof option !== 'boolean') throw specError(at(where, key), 'must be true or false', option)
    } else if (key === 'beta1' || key === 'beta2' || key === 'rho' || key === 'momentum' || key === 'decay') {
      requireNumber(at(where, key), option, key === 'decay' && name === 'adamax' ? { min: 0 } : { min: 0, maxExclusive: 1 })
    } else {
      requireNumber(at(where, key), option, key === 'epsilon' ? { minExclusive: 0 } : { min: 0 })
    }
  }
  return { ...spec } as OptimizerSpec
}
