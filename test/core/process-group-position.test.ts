/**
 * ProcessGroup.position (Note [Where a rank stands]): where a rank is in the collective
 * schedule, changed per call and per phase, for the coordinator's stall report.
 */
import { expect, test } from 'vitest'
import { DistError, InProcessHub, ProcessGroup, type CollectivePosition } from '@ringtrain/core'
import { scaled } from '../helpers/slack.js'

test('a call publishes its start, each ring step it waits in (with the peer), and the op the next call gets; never one change per segment', async () => {
  const transports = new InProcessHub(3).transports()
  const seen: CollectivePosition[][] = [[], [], []]
  // 64 floats in 4-byte segments: many segments per ring step.
  const groups = transports.map((t) => new ProcessGroup(t, { round: 0, timeoutMs: scaled(5_000), segmentBytes: 4, onPosition: (p) => seen[t.rank]!.push(p) }))
  expect(groups[0]!.position).toMatchObject({ step: 0, op: 0, phase: 'between collectives' })
  await Promise.all(groups.map((g) => g.allReduce(new Float32Array(64).fill(1), { step: 7 })))
  await Promise.all(groups.map((g) => g.barrier({ step: 7 })))
  const phases = seen[1]!.map((p) => `${p.collective ?? '-'} ${p.op} ${p.phase}${p.waitingFor !== undefined ? ` <- ${p.waitingFor}` : ''}`)
  expect(phases.filter((p) => p.startsWith('allReduce 0 reduce-scatter'))).toEqual([
    'allReduce 0 reduce-scatter, ring step 1 of 2, from rank 0 <- 0',
    'allReduce 0 reduce-scatter, ring step 2 of 2, from rank 0 <- 0',
  ])
  expect(phases.filter((p) => p.startsWith('allReduce 0 all-gather'))).toHaveLength(2)
  expect(phases[0]).toBe('allReduce 0 starting')
  expect(phases).toContain('- 1 between collectives')
  expect(phases).toContain('barrier 1 round 1 of 2 <- 0')
  expect(phases.at(-1)).toBe('- 2 between collectives')
  expect(groups[1]!.position).toMatchObject({ step: 7, op: 2, phase: 'between collectives' })
  expect(groups[1]!.position.collective).toBeUndefined()
  await Promise.all(transports.map((t) => t.close()))
})

test('a rank stuck in a collective shows the collective, the phase and the rank it waits for; after the timeout, the failure', async () => {
  const transports = new InProcessHub(2).transports()
  // Resolves when the group publishes that it waits in the ring (an event, not a pause).
  let waiting!: () => void
  const waits = new Promise<void>((resolve) => { waiting = resolve })
  const group = new ProcessGroup(transports[0]!, { round: 0, timeoutMs: scaled(300), onPosition: (p) => { if (p.waitingFor !== undefined) waiting() } })
  const call = group.allReduce(new Float32Array(8), { step: 3 })
  await waits
  expect(group.position).toMatchObject({ step: 3, op: 0, collective: 'allReduce', phase: 'reduce-scatter, ring step 1 of 1, from rank 1', waitingFor: 1 })
  const error = await call.then(() => undefined, (e: DistError) => e)
  expect(error?.code).toBe('E_TIMEOUT')
  expect(group.position).toMatchObject({ step: 3, op: 1, phase: 'failed in allReduce op 0: E_TIMEOUT' })
  await Promise.all(transports.map((t) => t.close()))
})
