/**
 * Catch mismatches before step 0 (docs/style.md, "Errors"): rank 0 broadcasts its backend
 * name, task fingerprint and gradient layout; every rank compares them with its own and fails
 * naming what differs, both ranks and their hosts (for a layout, the first differing tensor
 * and both shapes). Mixed backends are refused because their float results differ, so
 * replicas would drift apart.
 */
import { compareLayouts, ConfigError, type GradientLayout, type ProcessGroup } from '@ringtrain/core'
import { firstDifferingField, type TaskFingerprint } from '../task/task-fingerprint.js'

/** The task as this rank loaded it. */
export interface LoadedTask {
  path: string
  fingerprint: TaskFingerprint
}

export async function checkSameSetup(group: ProcessGroup, layout: GradientLayout, backend: string, task: LoadedTask, hosts: readonly string[]): Promise<void> {
  const rank0 = await group.broadcastValue({ backend, layout, task }, { step: 0 })
  const differing = firstDifferingField(rank0.task.fingerprint, task.fingerprint)
  if (differing !== undefined) {
    const where = (rank: number, path: string) => `rank ${rank} (host ${hosts[rank] ?? '?'}, task ${path})`
    throw new ConfigError(
      `${where(group.rank, task.path)} has another task than ${where(0, rank0.task.path)}: their '${differing}' differs. Every host must load the same task module; copy it from rank 0's host.`,
      { rank: group.rank, field: differing, expected: rank0.task.fingerprint[differing], got: task.fingerprint[differing] },
    )
  }
  if (rank0.backend !== backend) {
    throw new ConfigError(
      `rank ${group.rank} computes on backend '${backend}' but rank 0 on '${rank0.backend}'; a job refuses to mix backends because their float results differ. Pass the same --backend to every worker.`,
      { rank: group.rank, expected: rank0.backend, got: backend },
    )
  }
  compareLayouts(rank0.layout, 0, layout, group.rank)
}

/** What decides the sample order and the number of steps; it must be the same on every rank. */
export interface TrainingPlan {
  samples: number
  batchSize: number
  epochs: number
  dropLast: boolean
  totalSteps: number
}

const planWords: Record<keyof TrainingPlan, string> = {
  samples: 'training samples',
  batchSize: 'as batch size',
  epochs: 'epoch(s)',
  dropLast: 'as dropLast',
  totalSteps: 'steps in all',
}

/**
 * Rank 0's training plan against this rank's, before step 0: a data file with another row
 * count on one host would otherwise give ranks different shards and step counts, and show
 * up later as a timeout that says nothing of the cause.
 */
export async function checkSamePlan(group: ProcessGroup, plan: TrainingPlan): Promise<void> {
  const rank0 = await group.broadcastValue(plan, { step: 0 })
  for (const key of Object.keys(planWords) as (keyof TrainingPlan)[]) {
    if (rank0[key] === plan[key]) continue
    throw new ConfigError(
      `rank ${group.rank}'s training plan differs from rank 0's: rank 0 has ${String(rank0[key])} ${planWords[key]}, rank ${group.rank} has ${String(plan[key])}. Every rank must load the same training data with the same options.`,
      { rank: group.rank, expected: rank0[key], got: plan[key], field: key },
    )
  }
}
