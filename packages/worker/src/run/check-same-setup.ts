/**
 * Catch mismatches before step 0 (STYLE.md D): rank 0 broadcasts its backend name and
 * gradient layout; every rank compares them with its own and fails naming the first
 * differing tensor, both shapes and both ranks. Mixed backends are refused because their
 * float results differ, so replicas would drift apart.
 */
import { compareLayouts, ConfigError, type GradientLayout, type Transport } from '@ringtrain/core'
import { broadcastFromRankZero } from './broadcast-value.js'

export async function checkSameSetup(
  transport: Transport,
  layout: GradientLayout,
  backend: string,
  options: { round: number; timeoutMs: number },
): Promise<void> {
  const rank0 = await broadcastFromRankZero(transport, { backend, layout }, { round: options.round, step: 0, op: 0, timeoutMs: options.timeoutMs })
  if (rank0.backend !== backend) {
    throw new ConfigError(
      `rank ${transport.rank} computes on backend '${backend}' but rank 0 on '${rank0.backend}'; a job refuses to mix backends because their float results differ. Pass the same --backend to every worker.`,
      { rank: transport.rank, expected: rank0.backend, got: backend },
    )
  }
  compareLayouts(rank0.layout, 0, layout, transport.rank)
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
export async function checkSamePlan(transport: Transport, plan: TrainingPlan, options: { round: number; timeoutMs: number }): Promise<void> {
  const rank0 = await broadcastFromRankZero(transport, plan, { round: options.round, step: 0, op: 3, timeoutMs: options.timeoutMs })
  for (const key of Object.keys(planWords) as (keyof TrainingPlan)[]) {
    if (rank0[key] === plan[key]) continue
    throw new ConfigError(
      `rank ${transport.rank}'s training plan differs from rank 0's: rank 0 has ${String(rank0[key])} ${planWords[key]}, rank ${transport.rank} has ${String(plan[key])}. Every rank must load the same training data with the same options.`,
      { rank: transport.rank, expected: rank0[key], got: plan[key], field: key },
    )
  }
}
