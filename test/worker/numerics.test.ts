/**
 * The non-finite guard and the replica check over an in-process world of ProcessGroups:
 * every rank takes the same decision and makes the same collective calls (op counts stay
 * equal, and a collective after the check still pairs up), and the errors name the step,
 * the ranks and the tensor.
 */
import { describe, expect, test } from 'vitest'
import { createLayout, DistError, NonFiniteGradientError, ProcessGroup, ReplicaMismatchError, type Transport } from '@ringtrain/core'
import {
  checkReplicas, describeNonFinite, floatsToHash, hashToFloats, locateNonFinite, NonFiniteGuard, ranksFlagged, replicaCheckDue,
} from '@ringtrain/worker/unstable-internals-do-not-import'
import { createWorld } from '../helpers/world.js'
import { scaled } from '../helpers/slack.js'

const layout = createLayout([{ name: 'dense/kernel', shape: [2, 3] }, { name: 'dense/bias', shape: [3] }, { name: 'out/kernel', shape: [3, 1] }])
const silent = { info: (_: string) => undefined }

function groupOf(t: Transport): ProcessGroup {
  return new ProcessGroup(t, { round: 0, timeoutMs: scaled(5_000), segmentBytes: 8 })
}

/** Rank r's gradient: finite, except where `poison` says so. */
function gradientOf(rank: number, poison: Record<number, [index: number, value: number]>): Float32Array {
  const g = Float32Array.from({ length: layout.length }, (_, i) => (rank + 1) * 0.01 * (i + 1))
  const p = poison[rank]
  if (p !== undefined) g[p[0]] = p[1]
  return g
}

async function outcome<T>(promise: Promise<T>): Promise<T | DistError> {
  return promise.catch((error: DistError) => error)
}

describe('the decision pieces', () => {
  test('ranksFlagged, locateNonFinite and the stop message name ranks, tensor and element', () => {
    expect(ranksFlagged(Float32Array.of(0, 0, 1, 2, 0, 0, 1, 0), layout)).toEqual([{ rank: 1, tensor: 'out/kernel' }, { rank: 3, tensor: 'dense/kernel' }])
    const g = new Float32Array(layout.length)
    expect(locateNonFinite(layout, g)).toBeUndefined()
    g[7] = Number.NEGATIVE_INFINITY
    expect(locateNonFinite(layout, g)).toEqual({ tensorIndex: 1, tensor: 'dense/bias', element: 1, value: Number.NEGATIVE_INFINITY })
    expect(describeNonFinite(12, [{ rank: 1, tensor: 'out/kernel' }, { rank: 3, tensor: 'dense/bias' }]))
      .toMatch(/^non-finite gradient at step 12: the local gradient of ranks 1 \(first in tensor 'out\/kernel'\), 3 \(first in tensor 'dense\/bias'\) held NaN or Inf; stopping the job/)
    expect(describeNonFinite(2, [])).toMatch(/each was finite, but their average overflowed/)
  })

  test('replicaCheckDue: after every K-th step, never with 0', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].filter((s) => replicaCheckDue({ checkReplicasEvery: 4 }, s))).toEqual([3, 7])
    expect([0, 1, 499, 500].filter((s) => replicaCheckDue({ checkReplicasEvery: 0 }, s))).toEqual([])
    expect(floatsToHash(hashToFloats('cbf29ce484222325'))).toBe('cbf29ce484222325')
    expect(floatsToHash(hashToFloats('ffff00000001fffe'))).toBe('ffff00000001fffe')
  })
})

describe('NonFiniteGuard over 3 in-process ranks', () => {
  test('all finite: the average, no extra collective, nothing skipped', async () => {
    await using world = await createWorld('in-process', 3)
    const results = await world.run(async (t) => {
      const group = groupOf(t)
      const guard = new NonFiniteGuard(group, layout, 'stop', silent)
      const g = gradientOf(t.rank, {})
      const skip = await guard.allReduce(g, 0)
      return { skip, ops: group.opsIssued, first: g[0], skipped: guard.skippedSteps }
    })
    expect(results).toEqual(new Array(3).fill({ skip: false, ops: 1, first: expect.closeTo(0.02, 6), skipped: 0 }))
  })

  test('stop: every rank throws NonFiniteGradientError naming the step and rank 1, and rank 1 names its tensor', async () => {
    await using world = await createWorld('in-process', 3)
    const errors = await world.run((t) => outcome(new NonFiniteGuard(groupOf(t), layout, 'stop', silent).allReduce(gradientOf(t.rank, { 1: [10, Number.NaN] }), 7)))
    for (const [rank, error] of errors.entries()) {
      expect(error, `rank ${rank}`).toBeInstanceOf(NonFiniteGradientError)
      const e = error as NonFiniteGradientError
      expect(e.code).toBe('E_NONFINITE')
      expect(e.context).toMatchObject({ rank, step: 7, ranks: [1], tensor: 'out/kernel' })
      // The same message on every rank, whichever reaches the coordinator first.
      expect(e.message).toContain("non-finite gradient at step 7: the local gradient of rank 1 (first in tensor 'out/kernel') held NaN or Inf")
    }
    expect((errors[1] as DistError).context.got).toBe('NaN at element 1 of out/kernel')
  })

  test('skip: every rank skips the same step, counts it, and the schedule stays paired (the next all-reduce is right)', async () => {
    await using world = await createWorld('in-process', 3)
    const logged: string[] = []
    const results = await world.run(async (t) => {
      const group = groupOf(t)
      const guard = new NonFiniteGuard(group, layout, 'skip', { info: (line) => logged.push(`${t.rank}: ${line}`) })
      const skips = [
        await guard.allReduce(gradientOf(t.rank, { 0: [0, Number.POSITIVE_INFINITY], 2: [3, Number.NaN] }), 4),
        await guard.allReduce(gradientOf(t.rank, {}), 5),
      ]
      const after = Float32Array.of(t.rank)
      await group.allReduce(after, { step: 6, average: false })
      return { skips, skipped: guard.skippedSteps, ops: group.opsIssued, after: after[0] }
    })
    expect(results).toEqual(new Array(3).fill({ skips: [true, false], skipped: 1, ops: 4, after: 3 }))
    expect(logged.filter((l) => l.includes("skips optimizer step 4 on every rank: the local gradient of ranks 0 (first in tensor 'dense/kernel'), 2 (first in tensor 'dense/kernel') held NaN or Inf"))).toHaveLength(3)
  })

  test('finite local gradients whose average overflows: every rank stops, naming no rank', async () => {
    await using world = await createWorld('in-process', 2)
    const errors = await world.run((t) => outcome(new NonFiniteGuard(groupOf(t), layout, 'stop', silent).allReduce(new Float32Array(layout.length).fill(3e38), 0)))
    for (const error of errors) expect(error).toMatchObject({ code: 'E_NONFINITE', context: { ranks: [] } })
  })
})

describe('checkReplicas over 3 in-process ranks', () => {
  const weightsLayout = createLayout([{ name: 'w', shape: [4] }, { name: 'b', shape: [2] }, { name: 'norm/moving_mean', shape: [2] }])
  const weightsOf = (perturb?: { index: number }) => {
    const w = Float32Array.from({ length: weightsLayout.length }, (_, i) => i * 0.5 - 1)
    if (perturb) w[perturb.index]! += 1e-3
    return w
  }

  test('identical replicas pass with one collective', async () => {
    await using world = await createWorld('in-process', 3)
    const ops = await world.run(async (t) => {
      const group = groupOf(t)
      await checkReplicas(group, { weightsLayout, readWeights: () => weightsOf() }, 499)
      return group.opsIssued
    })
    expect(ops).toEqual([1, 1, 1])
  })

  test('a perturbed rank 2 stops every rank with ReplicaMismatchError naming rank 2 and its first differing tensor', async () => {
    await using world = await createWorld('in-process', 3)
    const errors = await world.run((t) => {
      const replica = { weightsLayout, readWeights: () => weightsOf(t.rank === 2 ? { index: 5 } : undefined) }
      return outcome(checkReplicas(groupOf(t), replica, 999))
    })
    for (const [rank, error] of errors.entries()) {
      expect(error, `rank ${rank}`).toBeInstanceOf(ReplicaMismatchError)
      expect(error).toMatchObject({ code: 'E_REPLICA_MISMATCH', context: { rank, step: 999, ranks: [2], tensor: 'b' } })
      expect((error as DistError).message).toMatch(/^replicas differ after step 999: rank 2 \(hash [0-9a-f]{16}, first differing tensor 'b'\) differs from rank 0 \(hash [0-9a-f]{16}\)/)
    }
  })

  test('when rank 0 is the odd one, every other rank is named, each with its tensor', async () => {
    await using world = await createWorld('in-process', 3)
    const errors = await world.run((t) => outcome(checkReplicas(groupOf(t), { weightsLayout, readWeights: () => weightsOf(t.rank === 0 ? { index: 6 } : undefined) }, 0)))
    for (const error of errors) {
      expect(error).toMatchObject({ context: { ranks: [1, 2], tensor: 'norm/moving_mean' } })
      expect((error as DistError).message).toContain("rank 1 (hash")
      expect((error as DistError).message).toContain("first differing tensor 'norm/moving_mean'), rank 2 (hash")
    }
  })
})
