/**
 * The NaN/Inf scan of gradients, the errors that report them and replica mismatches across
 * the wire, and the job-config and message fields of `--on-nonfinite` and
 * `--check-replicas-every`.
 */
import { describe, expect, test } from 'vitest'
import {
  allFinite, controlMessage, errorFromWire, firstNonFinite, MessageType, NonFiniteGradientError, ReplicaMismatchError, resolveJobConfig, encode,
} from '@ringtrain/core'
import { decodeControlMessage } from '@ringtrain/core/unstable-internals-do-not-import'

describe('allFinite and firstNonFinite', () => {
  test('find NaN, Inf and -Inf at every position of buffers of every length modulo 4', () => {
    for (const length of [1, 2, 3, 4, 5, 7, 8, 9, 33]) {
      const clean = Float32Array.from({ length }, (_, i) => (i % 2 === 0 ? -0 : 3.4e38) * (i % 3 === 0 ? -1 : 1))
      expect(allFinite(clean), `length ${length}`).toBe(true)
      expect(firstNonFinite(clean)).toBe(-1)
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
        for (let at = 0; at < length; at++) {
          const data = clean.slice()
          data[at] = bad
          expect(allFinite(data), `${bad} at ${at} of ${length}`).toBe(false)
          expect(firstNonFinite(data)).toBe(at)
        }
      }
    }
  })

  test('an empty buffer is finite, and firstNonFinite names the first of several', () => {
    expect(allFinite(new Float32Array(0))).toBe(true)
    expect(firstNonFinite(Float32Array.of(1, Number.POSITIVE_INFINITY, Number.NaN))).toBe(1)
  })
})

describe('errors', () => {
  test('NonFiniteGradientError and ReplicaMismatchError keep class, code and context across the wire', () => {
    const nonFinite = new NonFiniteGradientError('non-finite gradient at step 3', { step: 3, ranks: [1], tensor: 'dense/kernel' })
    expect(nonFinite.code).toBe('E_NONFINITE')
    const back = errorFromWire(nonFinite.toWire())
    expect(back).toBeInstanceOf(NonFiniteGradientError)
    expect(back).toMatchObject({ name: 'NonFiniteGradientError', code: 'E_NONFINITE', message: 'non-finite gradient at step 3', context: { step: 3, ranks: [1], tensor: 'dense/kernel' } })
    const mismatch = errorFromWire(new ReplicaMismatchError('replicas differ', { step: 9, ranks: [2], tensor: 'b' }).toWire())
    expect(mismatch).toBeInstanceOf(ReplicaMismatchError)
    expect(mismatch).toMatchObject({ code: 'E_REPLICA_MISMATCH', context: { ranks: [2], tensor: 'b' } })
  })
})

describe('job config and messages', () => {
  const base = { jobId: 'j', worldSize: 2, task: 't.ts', outDir: '/tmp/out' }

  test('onNonFinite defaults to stop and checkReplicasEvery to 500; both are validated', () => {
    expect(resolveJobConfig(base)).toMatchObject({ onNonFinite: 'stop', checkReplicasEvery: 500 })
    expect(resolveJobConfig({ ...base, onNonFinite: 'skip', checkReplicasEvery: 0 })).toMatchObject({ onNonFinite: 'skip', checkReplicasEvery: 0 })
    expect(() => resolveJobConfig({ ...base, onNonFinite: 'ignore' as never })).toThrow(/onNonFinite must be one of stop, skip, got "ignore"/)
    expect(() => resolveJobConfig({ ...base, checkReplicasEvery: -1 })).toThrow(/checkReplicasEvery must be an integer of at least zero/)
    expect(() => resolveJobConfig({ ...base, checkReplicasEvery: 2.5 })).toThrow(/checkReplicasEvery/)
  })

  test('StepMetrics and WorkerDone may carry skippedSteps, a non-negative integer', () => {
    const expect_ = { receiver: 'the coordinator', sender: 'rank 0', jobId: 'j' }
    const metrics = { rank: 0, round: 0, step: 4, epoch: 0, loss: Number.NaN, learningRate: 0.1, samples: 8, computeMs: 1, allReduceMs: 1, bytesSent: 0 }
    expect(decodeControlMessage(encode(controlMessage(MessageType.StepMetrics, 'j', { ...metrics, skippedSteps: 1 })), expect_)).toMatchObject({ skippedSteps: 1 })
    expect(decodeControlMessage(encode(controlMessage(MessageType.StepMetrics, 'j', metrics)), expect_)).not.toHaveProperty('skippedSteps')
    expect(() => decodeControlMessage(encode(controlMessage(MessageType.StepMetrics, 'j', { ...metrics, skippedSteps: -1 })), expect_)).toThrow(/skippedSteps is wrong/)
    const done = { rank: 0, steps: 5, parameterHash: 'h', finalLoss: 1, eval: {}, backend: 'cpu' }
    expect(decodeControlMessage(encode(controlMessage(MessageType.WorkerDone, 'j', { ...done, skippedSteps: 2 })), expect_)).toMatchObject({ skippedSteps: 2 })
    expect(() => decodeControlMessage(encode(controlMessage(MessageType.WorkerDone, 'j', { ...done, skippedSteps: 'x' as never })), expect_)).toThrow(/skippedSteps is wrong/)
  })
})
