import type { LearningRateSchedule } from './task-spec.js'
import { at, isRecord, rejectUnknownKeys, requireInteger, requireNumber, specError, type SpecField } from './spec-rules.js'

const scheduleTypes = ['constant', 'step', 'cosine', 'warmup'] as const
const scheduleKeys: Record<(typeof scheduleTypes)[number], readonly string[]> = {
  constant: ['type', 'learningRate'],
  step: ['type', 'learningRate', 'stepSize', 'gamma'],
  cosine: ['type', 'learningRate', 'totalSteps', 'minLearningRate'],
  warmup: ['type', 'warmupSteps', 'then'],
}

/**
 * Checks a learning rate: a finite number > 0, or a schedule (see `LearningRateSchedule`).
 * `field` names it in messages (`learningRate`, or the CLI's `--learning-rate`).
 */
export function validateLearningRate(task: string, value: unknown, field = 'learningRate'): number | LearningRateSchedule {
  const where: SpecField = { task, field }
  if (typeof value === 'number') return requireNumber(where, value, { minExclusive: 0 })
  if (!isRecord(value)) throw specError(where, 'must be a number > 0 or a schedule { type: constant | step | cosine | warmup, ... }', value)
  const type = value.type as (typeof scheduleTypes)[number]
  if (!scheduleTypes.includes(type)) throw specError(at(where, 'type'), `must be one of ${scheduleTypes.join(', ')}`, value.type)
  rejectUnknownKeys(where, value, scheduleKeys[type])
  switch (type) {
    case 'constant':
      requireNumber(at(where, 'learningRate'), value.learningRate, { minExclusive: 0 })
      break
    case 'step':
      requireNumber(at(where, 'learningRate'), value.learningRate, { minExclusive: 0 })
      requireInteger(at(where, 'stepSize'), value.stepSize, 1)
      requireNumber(at(where, 'gamma'), value.gamma, { minExclusive: 0 })
      break
    case 'cosine':
      requireNumber(at(where, 'learningRate'), value.learningRate, { minExclusive: 0 })
      requireInteger(at(where, 'totalSteps'), value.totalSteps, 1)
      if (value.minLearningRate !== undefined) {
        requireNumber(at(where, 'minLearningRate'), value.minLearningRate, { min: 0, max: value.learningRate as number })
      }
      break
    case 'warmup':
      requireInteger(at(where, 'warmupSteps'), value.warmupSteps, 0)
      validateLearningRate(task, value.then, `${field}.then`)
      break
  }
  return value as LearningRateSchedule
}
