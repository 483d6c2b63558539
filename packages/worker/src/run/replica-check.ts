/**
 * The periodic replica check (`--check-replicas-every K`, docs/design.md "Non-finite
 * gradients and replica checks"): after every K-th optimizer step, every rank hashes all its
 * weights (buffers included, as `Replica.parameterHash` does) and the ranks compare.
 *
 * The collective schedule is the same on every rank because each decision rests on data
 * every rank holds:
 *  1. all-gather of each rank's 64-bit hash (as four 16-bit halves in float32, exact):
 *     every rank sees every hash, so all agree whether any differs from rank 0's;
 *  2. only then, a broadcast of rank 0's per-tensor hashes: each differing rank finds its
 *     first differing tensor;
 *  3. an all-gather of those tensor indices, so every rank throws the same
 *     `ReplicaMismatchError` naming the differing ranks and the first differing tensor.
 * An identical check costs one hash of the weights and one small all-gather.
 */
import { hashBytes, ReplicaMismatchError, type GradientLayout, type JobConfig, type ProcessGroup } from '@ringtrain/core'

/** What the check reads of a replica. */
export interface ReplicaWeights {
  readonly weightsLayout: GradientLayout
  readWeights(): Float32Array
}

/** True when the check runs after optimizer step `step` (0-based): after every `checkReplicasEvery`-th step. */
export function replicaCheckDue(config: Pick<JobConfig, 'checkReplicasEvery'>, step: number): boolean {
  const every = config.checkReplicasEvery
  return every > 0 && (step + 1) % every === 0
}

/** Compares every rank's weights with rank 0's; throws `ReplicaMismatchError` on every rank when any differ. */
export async function checkReplicas(group: ProcessGroup, replica: ReplicaWeights, step: number): Promise<void> {
  if (group.worldSize === 1) return
  const weights = replica.readWeights()
  const hashes = (await group.allGather(hashToFloats(hashBytes(weights)), { step })).map(floatsToHash)
  const ranks = hashes.flatMap((h, r) => (h === hashes[0] ? [] : [r]))
  if (ranks.length === 0) return
  const { rank } = group
  const tensorHashes = (w: Float32Array) => replica.weightsLayout.entries.map((e) => hashBytes(w.subarray(e.offset, e.offset + e.length)))
  const rank0 = await group.broadcastValue(rank === 0 ? tensorHashes(weights) : [], { step })
  const first = ranks.includes(rank) ? tensorHashes(weights).findIndex((h, i) => h !== rank0[i]) : -1
  const firsts = await group.allGather(Float32Array.of(first), { step })
  const names = replica.weightsLayout.entries.map((e) => e.name)
  const tensorOf = (r: number) => names[firsts[r]![0]!] ?? '(none found)'
  throw new ReplicaMismatchError(describeReplicaMismatch({ step, ranks, hashes, tensorOf }), {
    rank, step, ranks, tensor: tensorOf(ranks[0]!), expected: hashes[0], got: hashes[rank],
  })
}

export function describeReplicaMismatch(at: { step: number; ranks: readonly number[]; hashes: readonly string[]; tensorOf: (rank: number) => string }): string {
  const each = at.ranks.map((r) => `rank ${r} (hash ${at.hashes[r]}, first differing tensor '${at.tensorOf(r)}')`).join(', ')
  return `replicas differ after step ${at.step}: ${each} ${at.ranks.length > 1 ? 'differ' : 'differs'} from rank 0 (hash ${at.hashes[0]}); stopping the job. Ranks must compute bitwise the same: check for mixed backends or hardware, or nondeterministic custom layers.`
}

/** A 16-hex-digit hash as four 16-bit integers, which float32 holds exactly (no bit patterns to trust). */
export function hashToFloats(hash: string): Float32Array {
  return Float32Array.from({ length: 4 }, (_, i) => Number.parseInt(hash.slice(i * 4, i * 4 + 4), 16))
}

export function floatsToHash(floats: Float32Array): string {
  return Array.from(floats, (x) => x.toString(16).padStart(4, '0')).join('')
}
