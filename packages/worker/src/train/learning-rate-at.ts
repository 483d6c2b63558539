import type { LearningRateSchedule } from '../task/task-spec.js'

/**
 * The learning rate at optimizer step `step` (0-based). A pure function of the schedule
 * and the step, so every rank, and a run resumed from a checkpoint, uses the same rate.
 * See `LearningRateSchedule` for each type's formula.
 */
export function learningRateAt(schedule: number | LearningRateSchedule, step: number): number {
  if (typeof schedule === 'number') return schedule
  switch (schedule.type) {
    case 'constant':
      return schedule.learningRate
    case 'step':
      return schedule.learningRate * Math.pow(schedule.gamma, Math.floor(step / schedule.stepSize))
    case 'cosine': {
      const min = schedule.minLearningRate ?? 0
      const progress = Math.min(step, schedule.totalSteps) / schedule.totalSteps
      return min + ((schedule.learningRate - min) * (1 + Math.cos(Math.PI * progress))) / 2
    }
    case 'warmup':
      if (step < schedule.warmupSteps) return (learningRateAt(schedule.then, 0) * (step + 1)) / schedule.warmupSteps
      return learningRateAt(schedule.then, step - schedule.warmupSteps)
  }
}

/**
 * A schedule's base rate: the `learningRate` of a constant, step or cosine schedule (its
 * peak), the number itself, and for a warm-up the base rate of what follows it.
 */
export function baseLearningRate(schedule: number | LearningRateSchedule): number {
  if (typeof schedule === 'number') return schedule
  return schedule.type === 'warmup' ? baseLearningRate(schedule.then) : schedule.learningRate
}

/**
 * `schedule` with base rate `rate` (what `--lr` sets): the base becomes `rate` exactly and
 * every other rate in it (a cosine's `minLearningRate`) is scaled by `rate / base`, so
 * warm-up, steps and decay keep their shape and only the scale changes.
 */
export function withBaseLearningRate(schedule: number | LearningRateSchedule, rate: number): number | LearningRateSchedule {
  if (typeof schedule === 'number') return rate
  switch (schedule.type) {
    case 'constant':
    case 'step':
      return { ...schedule, learningRate: rate }
    case 'cosine': {
      const { minLearningRate, ...rest } = schedule
      return minLearningRate === undefined ? { ...rest, learningRate: rate } : { ...rest, learningRate: rate, minLearningRate: minLearningRate * (rate / schedule.learningRate) }
    }
    case 'warmup':
      return { ...schedule, then: withBaseLearningRate(schedule.then, rate) }
  }
}
