/**
 * Ranks from schedulers. A worker started by mpirun, srun, a Kubernetes indexed Job or a
 * torchrun-style launcher knows its global rank and the number of workers started; it sends
 * them as hints with its JoinRequest. The coordinator refuses a join whose world size is not
 * the job's (a job that would otherwise wait out its join timeout for workers that were
 * never started), and, in a fixed-size job, a second worker that claims a rank already
 * claimed. Ranks follow the hints where they fit (assign-ranks.ts); in elastic jobs the hints
 * are preferences only, since a round may be smaller than the scheduler's world.
 */
import type { JoinRequest, WireError } from '@ringtrain/core'
import type { RendezvousState, WaitingWorker } from './types.js'

/** Why this join cannot be taken as its hints say, or undefined. */
export function rankHintProblem(state: RendezvousState, join: JoinRequest): WireError | undefined {
  const { config } = state
  const elastic = config.minWorkers !== undefined
  const who = `pid ${join.pid} on ${join.host}`
  const source = join.hintSource !== undefined ? ` (${join.hintSource})` : ''
  const most = elastic ? config.maxWorkers ?? config.worldSize : config.worldSize
  const sizeWords = elastic ? `at most ${most} workers (--max-workers)` : `${most} workers (-n)`
  if (join.worldSizeHint !== undefined && (elastic ? join.worldSizeHint > most : join.worldSizeHint !== most)) {
    const message = `The coordinator refused the join of ${who}: its launcher started ${join.worldSizeHint} workers${source}, but the job runs ${sizeWords}. Start the coordinator with -n ${join.worldSizeHint}, or start ${most} workers.`
    return { name: 'ConfigError', code: 'E_CONFIG', message, context: { expected: elastic ? `≤ ${most}` : most, got: join.worldSizeHint } }
  }
  if (join.rankHint === undefined || elastic) return undefined
  if (join.rankHint >= most) {
    const message = `The coordinator refused the join of ${who}: it asks for rank ${join.rankHint}${source}, but the job runs ${sizeWords}, ranks 0-${most - 1}.`
    return { name: 'ConfigError', code: 'E_CONFIG', message, context: { expected: `< ${most}`, got: join.rankHint } }
  }
  const holder = state.waitList.find((w) => w.rankHint === join.rankHint && w.pid !== join.pid)
  if (holder !== undefined) {
    const message = `The coordinator refused the join of ${who}: it asks for rank ${join.rankHint}${source}, which pid ${holder.pid} on ${holder.host} asked for first${holder.hintSource !== undefined ? ` (${holder.hintSource})` : ''}. Each worker of a job needs its own rank.`
    return { name: 'ConfigError', code: 'E_CONFIG', message, context: { expected: 'a rank no other worker holds', got: join.rankHint } }
  }
  return undefined
}

/** The wait-list entry for a join. */
export function waitingWorker(from: string, join: JoinRequest, now: number): WaitingWorker {
  return {
    identity: from, host: join.host, pid: join.pid, localRank: join.localRank, dataEndpoints: join.dataEndpoints, backend: join.backend, joinedAtMs: now, lastHeartbeatAt: now,
    ...(join.rankHint !== undefined ? { rankHint: join.rankHint } : {}),
    ...(join.hintSource !== undefined ? { hintSource: join.hintSource } : {}),
    ...(join.livenessToken !== undefined ? { livenessToken: join.livenessToken } : {}),
  }
}
