/** broadcast, allGather and barrier over both transports, with closed-form expectations. */
import { describe, expect, test } from 'vitest'
import { allGather, barrier, broadcast } from '@ringtrain/core'
import { createWorld, type WorldKind } from '../helpers/world.js'
import '../helpers/zeromq-world.js'
import { mulberry32 } from './scenarios/prng.js'

describe.each(['in-process', 'zeromq'] as const)('collectives over %s', (kind: WorldKind) => {
  test.each([1, 2, 3, 4, 7])('broadcast copies the root\'s bytes to all %i ranks, from every root', async (worldSize) => {
    await using world = await createWorld(kind, worldSize)
    const random = mulberry32(worldSize)
    const source = Float32Array.from({ length: 1009 }, () => random() * 2 - 1)
    await world.run(async (t) => {
      let op = 0
      for (let root = 0; root < worldSize; root++) {
        for (const length of [0, 1, worldSize + 1, 1009]) {
          const data = t.rank === root ? source.slice(0, length) : new Float32Array(length).fill(-t.rank)
          await broadcast(t, data, { root, step: 1, op: op++, timeoutMs: 5_000, segmentBytes: 64 })
          // root's data leaves untouched; the others hold its exact bytes
          expect(Buffer.from(data.buffer).equals(Buffer.from(source.buffer, 0, length * 4)), `rank ${t.rank} root ${root} length ${length}`).toBe(true)
          if (t.rank === root) data.fill(Number.NaN) // the caller may reuse its buffer at once
        }
      }
    })
  })

  test.each([1, 2, 3, 4, 7])('allGather returns every rank\'s block of its own length on %i ranks', async (worldSize) => {
    await using world = await createWorld(kind, worldSize)
    const results = await world.run(async (t) => {
      const data = Float32Array.from({ length: t.rank * 3 }, (_, i) => t.rank * 1000 + i)
      const gathered = await allGather(t, data, { step: 2, op: 0, timeoutMs: 5_000 })
      data.fill(Number.NaN) // our copy went out: overwriting the input cannot reach a peer
      return gathered.map((block) => Array.from(block))
    })
    const expected = Array.from({ length: worldSize }, (_, r) => Array.from({ length: r * 3 }, (_, i) => r * 1000 + i))
    for (const result of results) expect(result).toEqual(expected)
  })

  test.each([1, 2, 3, 5, 7])('barrier holds every one of %i ranks until the last arrives', async (worldSize) => {
    await using world = await createWorld(kind, worldSize)
    const arrived: number[] = []
    const lateRank = worldSize - 1
    const released = await world.run(async (t) => {
      if (t.rank === lateRank) await new Promise((resolve) => setTimeout(resolve, 50))
      arrived.push(t.rank)
      await barrier(t, { step: 0, op: 0, timeoutMs: 5_000 })
      // nobody is released before everyone has arrived
      return arrived.length
    })
    expect(released).toEqual(new Array(worldSize).fill(worldSize))
  })

  test('barriers, broadcasts and all-gathers run back to back on one transport', async () => {
    await using world = await createWorld(kind, 3)
    await world.run(async (t) => {
      for (let op = 0; op < 6; op += 3) {
        await barrier(t, { step: 5, op, timeoutMs: 5_000 })
        const data = new Float32Array(10).fill(t.rank === 2 ? 7 : 0)
        await broadcast(t, data, { root: 2, step: 5, op: op + 1, timeoutMs: 5_000 })
        expect(Array.from(data)).toEqual(new Array(10).fill(7))
        const gathered = await allGather(t, new Float32Array([t.rank]), { step: 5, op: op + 2, timeoutMs: 5_000 })
        expect(gathered.map((b) => b[0])).toEqual([0, 1, 2])
      }
    })
  })
})
