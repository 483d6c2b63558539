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
