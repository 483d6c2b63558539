/**
 * Checks of the ranks' final reports before a job counts as finished. Pure.
 *
 * - The evaluation is plausible: every rank reports the same size of the whole evaluation
 *   set (`evalExamples`), no rank counted more samples than its `evalShard` of that set
 *   holds, a rank without eval data counted nothing, and every sum is finite.
 * - The replicas ended identical: one parameter hash on every rank.
 *
 * Which counts are bounded by the shard: `loss` is counted in samples (one per evaluated
 * sample, worker/src/train/replica.ts), so it is at most the shard's length. The other
 * metrics count what their terms count: `mse`, `mae` and custom metrics count elements
 * (samples × outputs, or whatever a custom `fn` returns), which may exceed the shard on a
 * correct run; they are held to a non-negative integer count, a finite sum, and nothing
 * counted on an empty shard.
 */
import { evalShard, type WireError, type WorkerDone } from '@ringtrain/core'

/** Ranks grouped by equal value, the largest group first (ties: the group with the lowest rank first). */
export function groupRanks<T>(values: readonly T[]): Array<{ value: T; ranks: number[] }> {
  const groups: Array<{ value: T; ranks: number[] }> = []
  values.forEach((value, rank) => {
    const group = groups.find((g) => g.value === value)
    if (group === undefined) groups.push({ value, ranks: [rank] })
    else group.ranks.push(rank)
  })
  return groups.sort((a, b) => b.ranks.length - a.ranks.length || a.ranks[0]! - b.ranks[0]!)
}

/** The groups that disagree: the minority groups when one group holds more than half the ranks, else every group. */
function disagreeing<T>(groups: Array<{ value: T; ranks: number[] }>, worldSize: number): { majority?: { value: T; ranks: number[] }; named: Array<{ value: T; ranks: number[] }> } {
  const [largest] = groups
  return largest!.ranks.length * 2 > worldSize ? { majority: largest, named: groups.slice(1) } : { named: groups }
}

export function ranksText(ranks: readonly number[]): string {
  return ranks.length === 1 ? `rank ${ranks[0]}` : `ranks ${ranks.join(', ')}`
}

/** E_LAYOUT_MISMATCH naming the ranks whose parameter hashes differ from most ranks' (or every group without a majority); undefined when all agree. */
export function differingReplicas(hashes: readonly string[]): WireError | undefined {
  const groups = groupRanks(hashes)
  if (groups.length < 2) return undefined
  const { majority, named } = disagreeing(groups, hashes.length)
  const ended = (g: { value: string; ranks: number[] }) => `${ranksText(g.ranks)} ended with parameter hash ${g.value}`
  const which = majority !== undefined
    ? `${named.map(ended).join('; ')}, while ${ended(majority)}`
    : `no hash is held by most ranks: ${named.map(ended).join('; ')}`
  const message = `The replicas differ at the end of the job: ${which}. The ranks did not apply identical updates, so the job failed; summary.json lists every rank's hash.`
  const ranks = named.flatMap((g) => g.ranks).sort((a, b) => a - b)
  return { name: 'LayoutMismatchError', code: 'E_LAYOUT_MISMATCH', message, context: { ranks, expected: majority?.value ?? 'one parameter hash on every rank', got: [...hashes] } }
}

/**
 * E_BAD_FRAME naming the rank, the metric, expected and got when the evaluation reports are
 * not plausible (see the file comment); undefined when they are. `reports` is by rank.
 */
export function implausibleEval(reports: readonly WorkerDone[], who: (rank: number) => string): WireError | undefined {
  const worldSize = reports.length
  const sizes = groupRanks(reports.map((r) => r.evalExamples))
  if (sizes.length > 1) {
    const { majority, named } = disagreeing(sizes, worldSize)
    const reported = (g: { value: number | undefined; ranks: number[] }) => `${ranksText(g.ranks)} ${g.ranks.length === 1 ? 'reports' : 'report'} ${size(g.value)}`
    const message = `The ranks disagree on the size of the evaluation set: ${named.map(reported).join('; ')}${majority !== undefined ? `, while ${reported(majority)}` : ''}. Every rank evaluates a shard of the same set, so the evaluation is not plausible; the job failed.`
    const [first] = named
    return implausible(message, { rank: first!.ranks[0]!, metric: 'evalExamples', expected: majority !== undefined ? size(majority.value) : 'one size on every rank', got: size(first!.value) })
  }
  const length = sizes[0]!.value
  if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) {
    return implausible(`${who(0)} reported an evaluation set of ${length} samples; expected a non-negative integer. The evaluation is not plausible; the job failed.`, { rank: 0, metric: 'evalExamples', expected: 'a non-negative integer', got: length })
  }
  for (let rank = 0; rank < worldSize; rank++) {
    const shard = length === undefined ? 0 : evalShard({ length, rank, worldSize }).length
    for (const [metric, { sum, count }] of Object.entries(reports[rank]!.eval)) {
      const about = `${who(rank)} reported eval metric ${JSON.stringify(metric)}`
      if (!Number.isSafeInteger(count) || count < 0) {
        return implausible(`${about} over ${count} values; expected a non-negative integer count. The evaluation is not plausible; the job failed.`, { rank, metric, expected: 'a non-negative integer count', got: count })
      }
      if (!Number.isFinite(sum)) {
        return implausible(`${about} with the sum ${sum}; expected a finite sum. The evaluation is not plausible; the job failed.`, { rank, metric, expected: 'a finite sum', got: sum })
      }
      const limit = metric === 'loss' || shard === 0 ? shard : undefined
      if (limit !== undefined && count > limit) {
        const of = length === undefined ? 'it reported no evaluation set (evalExamples)' : `its shard of the ${length}-sample evaluation set holds ${shard}`
        return implausible(`${about} over ${count} samples, but ${of}: expected at most ${limit}, got ${count}. The evaluation is not plausible; the job failed.`, { rank, metric, expected: `at most ${limit}`, got: count })
      }
    }
  }
  return undefined
}

function size(examples: number | undefined): string {
  return examples === undefined ? 'no evaluation set' : `${examples} samples`
}

function implausible(message: string, context: { rank: number; metric: string; expected: unknown; got: unknown }): WireError {
  return { name: 'FrameError', code: 'E_BAD_FRAME', message, context }
}
