/** ProcessGroup: one collective schedule per round, op ids handed out in call order. */
import { describe, expect, test } from 'vitest'
import { broadcastBytes, DistError, ProcessGroup, type Tag, type Transport } from '@ringtrain/core'
import { createWorld, type WorldKind } from '../helpers/world.js'
import '../helpers/zeromq-world.js'
import { scaled } from '../helpers/slack.js'

/** Records the tag of every message a transport sends. */
class Recording implements Transport {
  readonly sent: Tag[] = []
  constructor(readonly inner: Transport) {}
  get rank() { return this.inner.rank }
  get worldSize() { return this.inner.worldSize }
  send(peer: number, tag: Tag, bytes: Uint8Array) { this.sent.push(tag); return this.inner.send(peer, tag, bytes) }
  recv(peer: number, tag: Tag, options: { timeoutMs: number }) { return this.inner.recv(peer, tag, options) }
  release(bytes: Uint8Array) { this.inner.release?.(bytes) }
  close() { return this.inner.close() }
}

/** The error `promise` rejects with; fails the test when it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<DistError> {
  return promise.then(() => expect.unreachable('the call should have failed'), (error: DistError) => error)
}

describe.each(['in-process', 'zeromq'] as const)('ProcessGroup over %s', (kind: WorldKind) => {
  test('numbers every call in call order, whatever the collective, and tags it with its kind', async () => {
    await using world = await createWorld(kind, 3)
    const sent = await world.run(async (t) => {
      const recording = new Recording(t)
      const group = new ProcessGroup(recording, { round: 4, timeoutMs: scaled(5_000), segmentBytes: 8 })
      const plan = await group.broadcastValue({ samples: 10 + t.rank, name: `rank ${t.rank}` }, { step: 0 })
      expect(plan).toEqual({ samples: 10, name: 'rank 0' }) // rank 0's record on every rank
      const weights = new Float32Array(5).fill(t.rank === 0 ? 1.5 : 0)
      await group.broadcast(weights, { step: 0 })
      expect(Array.from(weights)).toEqual([1.5, 1.5, 1.5, 1.5, 1.5])
      const gradients = new Float32Array(7).fill(t.rank + 1)
      await group.allReduce(gradients, { step: 0 })
      expect(Array.from(gradients)).toEqual(new Array(7).fill(2)) // average of 1, 2, 3
      await group.barrier({ step: 1 })
      const gathered = await group.allGather(new Float32Array([t.rank]), { step: 1 })
      expect(gathered.map((b) => b[0])).toEqual([0, 1, 2])
      expect(group.opsIssued).toBe(5)
      return recording.sent
    })
    // collective codes: allReduce 1, broadcast 2, allGather 3, barrier 4
    // (the end of a broadcast chain sends nothing, so look at what all ranks sent together)
    const ops = [...new Map(sent.flat().map((tag) => [tag.op, [tag.op, tag.collective, tag.step, tag.round]])).values()].sort((a, b) => a[0]! - b[0]!)
    expect(ops).toEqual([[0, 2, 0, 4], [1, 2, 0, 4], [2, 1, 0, 4], [3, 4, 1, 4], [4, 3, 1, 4]])
  })

  test('a rank whose schedule differs fails with E_TAG_MISMATCH naming both collectives, and nothing is mixed', async () => {
    await using world = await createWorld(kind, 2)
    const results = await world.run(async (t) => {
      const group = new ProcessGroup(t, { round: 0, timeoutMs: scaled(1_000) })
      const data = new Float32Array(4).fill(t.rank + 1)
      // Rank 1 skips the broadcast of buffers that rank 0 makes, then all-reduces: same op id, other collective.
      const call = t.rank === 0 ? group.broadcast(data, { step: 3 }).then(() => group.allReduce(data, { step: 3 })) : group.allReduce(data, { step: 3 })
      const outcome = await call.then(() => undefined, (error: unknown) => error as DistError)
      return { outcome, data: Array.from(data) }
    })
    const mismatch = results[1]!.outcome!
    expect(mismatch.code).toBe('E_TAG_MISMATCH')
    expect(mismatch.message).toMatch(/^rank 1 expected a frame with round 0 step 3 op 0 \(allReduce\) ring step 0 segment 0 from rank 0 but got round 0 step 3 op 0 \(broadcast\) ring step 1 segment 0; dropped it\./)
    expect(results[1]!.data).toEqual([2, 2, 2, 2]) // rank 0's broadcast bytes never reached rank 1's gradients
  })

  test('a failed call fails every later call of the group with the same error', async () => {
    await using world = await createWorld(kind, 2)
    const group = new ProcessGroup(world.transports[0]!, { round: 0, timeoutMs: 50 })
    const first = await rejectionOf(group.barrier({ step: 0 }))
    expect(first.code).toBe('E_TIMEOUT') // rank 1 never entered the barrier
    const second = await rejectionOf(group.allReduce(new Float32Array(2), { step: 0 }))
    expect(second).toBe(first)
    expect(group.opsIssued).toBe(2)
  })
})

test('two calls in flight on one group are refused: they would take each other\'s frames', async () => {
  await using world = await createWorld('in-process', 2)
  const group = new ProcessGroup(world.transports[0]!, { round: 0, timeoutMs: 200 })
  const first = rejectionOf(group.barrier({ step: 2 }))
  const second = await rejectionOf(group.allReduce(new Float32Array(2), { step: 2 }))
  expect(second.code).toBe('E_INTERNAL')
  expect(second.message).toBe('rank 0 called allReduce as op 1 at step 2 while barrier op 0 was still in flight; collectives of one group run one at a time.')
  expect((await first).code).toBe('E_TIMEOUT')
})

describe('broadcastBytes', () => {
  test.each([0, 1, 7, 64, 1000])('carries %i bytes of a length only the root knows to 3 ranks', async (byteLength) => {
    await using world = await createWorld('zeromq', 3)
    const source = Uint8Array.from({ length: byteLength }, (_, i) => (i * 31 + 7) & 255)
    const received = await world.run((t) => broadcastBytes(t, t.rank === 1 ? source : undefined, { root: 1, step: 0, op: 0, timeoutMs: scaled(5_000), segmentBytes: 16 }))
    for (const bytes of received) expect(Buffer.from(bytes).equals(Buffer.from(source))).toBe(true)
  })

  test('a length over maxByteLength is refused before anything is allocated', async () => {
    await using world = await createWorld('in-process', 2)
    const [, refused] = await Promise.all([
      broadcastBytes(world.transports[0]!, new Uint8Array(100), { root: 0, step: 5, op: 2, timeoutMs: scaled(1_000) }),
      rejectionOf(broadcastBytes(world.transports[1]!, undefined, { root: 0, step: 5, op: 2, timeoutMs: scaled(1_000), maxByteLength: 64 })),
    ])
    expect(refused.code).toBe('E_FRAME_TOO_LARGE')
    expect(refused.message).toBe('rank 1 was sent 100 bytes by root 0 in broadcast op 2 at step 5; at most 64 bytes are accepted.')
  })
})
