/**
 * Non-finite gradients (`--on-nonfinite stop|skip`, docs/design.md "Non-finite gradients and
 * replica checks"). Wraps the step's gradient all-reduce:
 *
 *  1. Before the ring, this rank scans its LOCAL gradient (`allFinite`: one branch-free
 *     pass, about 0.12 ms per MB); the ring overwrites the buffer, so it is now or never.
 *  2. After the ring, it scans the AVERAGE. NaN and ±Inf survive addition and scaling, so
 *     the average is non-finite whenever any local gradient was, and the average is
 *     bitwise the same on every rank: every rank reaches the same verdict without a message.
 *  3. Only then (so either every rank or none makes the call) one more all-reduce (a sum)
 *     of a Float32Array(2 × worldSize) where rank r sets element 2r to 1 when its local
 *     gradient was non-finite and element 2r+1 to the index of its first such tensor: every
 *     rank learns which ranks they were and where, and all throw the same message.
 *
 * `stop` throws `NonFiniteGradientError` on every rank, naming the step and the ranks;
 * `skip` returns true on every rank, the caller leaves out that optimizer step, and
 * `skippedSteps` counts it. A finite step costs two scans and no extra collective.
 */
import { allFinite, firstNonFinite, NonFiniteGradientError, type GradientLayout, type OnNonFinite, type ProcessGroup } from '@ringtrain/core'

/** Where this rank's local gradient first held NaN or Inf. */
export interface LocalNonFinite {
  /** Index of the tensor in the layout. */
  tensorIndex: number
  tensor: string
  /** Element index inside that tensor. */
  element: number
  value: number
}

export class NonFiniteGuard {
  /** Optimizer steps skipped so far (mode `skip`); the same on every rank. */
  skippedSteps = 0

  constructor(
    private readonly group: ProcessGroup,
    private readonly layout: GradientLayout,
    private readonly mode: OnNonFinite,
    private readonly log: { info(sentence: string): void },
  ) {}

  /**
   * Averages `gradients` in place across ranks (the step's all-reduce) and checks them.
   * Returns true when every rank must skip optimizer step `step` (mode `skip`); throws
   * `NonFiniteGradientError` on every rank in mode `stop`.
   */
  async allReduce(gradients: Float32Array, step: number): Promise<boolean> {
    const local = allFinite(gradients) ? undefined : locateNonFinite(this.layout, gradients)
    await this.group.allReduce(gradients, { step, average: true })
    if (allFinite(gradients)) return false
    const { rank, worldSize } = this.group
    const flags = new Float32Array(2 * worldSize)
    if (local !== undefined) {
      flags[2 * rank] = 1
      flags[2 * rank + 1] = local.tensorIndex
    }
    await this.group.allReduce(flags, { step, average: false })
    const ranks = ranksFlagged(flags, this.layout)
    if (this.mode === 'stop') {
      throw new NonFiniteGradientError(describeNonFinite(step, ranks), {
        rank, step, ranks: ranks.map((r) => r.rank), tensor: ranks[0]?.tensor, expected: 'finite gradients', got: local === undefined ? 'a non-finite average' : `${local.value} at element ${local.element} of ${local.tensor}`,
      })
    }
    this.skippedSteps++
    this.log.info(`skips optimizer step ${step} on every rank: ${whose(ranks)} held NaN or Inf; ${this.skippedSteps} step(s) skipped so far (--on-nonfinite skip).`)
    return true
  }
}

/** A rank whose local gradient was non-finite, and its first such tensor. */
export interface FlaggedRank {
  rank: number
  tensor: string
}

/** The ranks whose flag (element 2r) is set in the summed flags, in order, each with its first non-finite tensor (element 2r+1). */
export function ranksFlagged(flags: Float32Array, layout: GradientLayout): FlaggedRank[] {
  const ranks: FlaggedRank[] = []
  for (let r = 0; 2 * r < flags.length; r++) {
    if (flags[2 * r] !== 0) ranks.push({ rank: r, tensor: layout.entries[flags[2 * r + 1]!]?.name ?? '(unknown)' })
  }
  return ranks
}

/** The first non-finite element of `flat` (in `layout` order), or undefined when all are finite. */
export function locateNonFinite(layout: GradientLayout, flat: Float32Array): LocalNonFinite | undefined {
  const index = firstNonFinite(flat)
  if (index < 0) return undefined
  const tensorIndex = layout.entries.findIndex((e) => index >= e.offset && index < e.offset + e.length)
  const entry = layout.entries[tensorIndex]
  return { tensorIndex, tensor: entry?.name ?? '(outside the layout)', element: entry === undefined ? index : index - entry.offset, value: flat[index]! }
}

function whose(ranks: readonly FlaggedRank[]): string {
  if (ranks.length === 0) return 'no local gradient (each was finite, but their average overflowed)'
  const each = ranks.map((r) => `${r.rank} (first in tensor '${r.tensor}')`).join(', ')
  return `the local gradient of rank${ranks.length > 1 ? 's' : ''} ${each}`
}

/** The stop message; the same on every rank. */
export function describeNonFinite(step: number, ranks: readonly FlaggedRank[]): string {
  return `non-finite gradient at step ${step}: ${whose(ranks)} held NaN or Inf; stopping the job (--on-nonfinite stop). Lower the learning rate, clip gradients (clipNorm), or pass --on-nonfinite skip to skip such steps.`
}
