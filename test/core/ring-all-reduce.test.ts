/**
 * ringAllReduce over both transports: closed-form sums and averages over the edges of world
 * size and length, multi-segment pipelines, a differential check against a naive sum on
 * seeded random data, bitwise identity across ranks, and buffer lifetimes (zero-copy).
 */
import { createHash } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { describe, expect, test } from 'vitest'
import { ringAllReduce, type Tag, type Transport } from '@ringtrain/core'
import { createWorld, type WorldKind } from '../helpers/world.js'
import '../helpers/zeromq-world.js'
import { mulberry32 } from './scenarios/prng.js'
import { runInProcesses, runInProcessesTimeout } from '../helpers/process-world.js'
import { scaled } from '../helpers/slack.js'
import type { AllReduceOutcome } from './scenarios/all-reduce.js'

/** Fails with the first element that is not `expected`, naming rank and length. */
function expectAllEqual(data: Float32Array, expected: number, where: Record<string, unknown>): void {
  const index = data.findIndex((x) => x !== Math.fround(expected))
  if (index >= 0) expect.fail(`${JSON.stringify(where)}: element ${index} is ${data[index]}, expected ${Math.fround(expected)}`)
}

const hashOf = (data: Float32Array) =>
  createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex')

describe.each(['in-process', 'zeromq'] as const)('ringAllReduce over %s', (kind: WorldKind) => {
  test.each([1, 2, 3, 4, 7])('sums and averages rank+1 across %i ranks, multi-segment', async (worldSize) => {
    await using world = await createWorld(kind, worldSize)
    await world.run(async (t) => {
      let op = 0
      for (const length of [0, 1, worldSize - 1, worldSize + 1, 1009]) {
        for (const average of [false, true]) {
          const data = new Float32Array(length).fill(t.rank + 1)
          await ringAllReduce(t, data, { step: 0, op: op++, timeoutMs: 5_000, segmentBytes: 64, average })
          const sum = (worldSize * (worldSize + 1)) / 2
          expectAllEqual(data, average ? sum / worldSize : sum, { rank: t.rank, length, average })
        }
      }
    })
  })

  test.each([2, 4])('sums 16 MiB (4M floats) across %i ranks with the default segments', async (worldSize) => {
    await using world = await createWorld(kind, worldSize)
    const hashes = await world.run(async (t) => {
      const data = new Float32Array(4 * 1024 * 1024).fill(t.rank + 1)
      await ringAllReduce(t, data, { step: 3, op: 0, timeoutMs: 20_000 })
      expectAllEqual(data, (worldSize * (worldSize + 1)) / 2, { rank: t.rank, length: data.length })
      return hashOf(data)
    }, { deadlineMs: 40_000 })
    expect(new Set(hashes).size).toBe(1)
  })

  test.each([2, 3, 5])('equals a naive sum on seeded random data, bitwise identical on %i ranks', async (worldSize) => {
    await using world = await createWorld(kind, worldSize)
    for (let iteration = 0; iteration < 8; iteration++) {
      const seed = 1000 * worldSize + iteration
      const random = mulberry32(seed)
      const length = Math.floor(random() * 3000)
      const segmentBytes = 4 * (1 + Math.floor(random() * 300))
      const inputs = Array.from({ length: worldSize }, () => Float32Array.from({ length }, () => (random() - 0.5) * 2 ** Math.floor(random() * 20 - 10)))
      const results = await world.run(async (t) => {
        const data = inputs[t.rank]!.slice()
        await ringAllReduce(t, data, { step: iteration, op: 0, timeoutMs: 5_000, segmentBytes })
        return data
      })
      const where = `seed ${seed}, world size ${worldSize}, iteration ${iteration}, length ${length}, segmentBytes ${segmentBytes}`
      // every rank ends with the same bytes
      expect(new Set(results.map(hashOf)).size, where).toBe(1)
      // and they are the sum, up to float32 summation order
      const naive = new Float64Array(length)
      for (const input of inputs) input.forEach((x, i) => { naive[i] = naive[i]! + x })
      results[0]!.forEach((x, i) => {
        const bound = 1e-6 * inputs.reduce((s, input) => s + Math.abs(input[i]!), 0) * worldSize
        if (!(Math.abs(x - naive[i]!) <= bound)) expect.fail(`${where}: element ${i} is ${x}, naive sum ${naive[i]}`)
      })
    }
  })

  test('a rank may overwrite its buffer as soon as the call returns (zero-copy sends)', async () => {
    // Rank 1 reads every message a moment late, so rank 0 returns and scribbles over its
    // buffer while rank 1 still holds references to what rank 0 sent. If rank 0 had sent
    // its reduced chunk from `data`, rank 1 would read NaN.
    for (const worldSize of [2, 3]) {
      await using world = await createWorld(kind, worldSize)
      const transports = world.transports.map((t) => (t.rank === 1 ? new LateReader(t) : t))
      const results = await Promise.all(transports.map(async (t) => {
        for (let op = 0; op < 3; op++) {
          const data = new Float32Array(301).fill(t.rank + 1)
          await ringAllReduce(t, data, { step: 0, op, timeoutMs: 5_000, segmentBytes: 64 })
          const copy = data.slice()
          data.fill(Number.NaN)
          expectAllEqual(copy, (worldSize * (worldSize + 1)) / 2, { rank: t.rank, worldSize, op })
        }
        return t.rank
      }))
      expect(results).toEqual([...Array(worldSize).keys()])
    }
  })
})

describe('ringAllReduce across OS processes (one per rank, ZeroMQ)', () => {
  const scenario = fileURLToPath(new URL('./scenarios/all-reduce.ts', import.meta.url))
  const deadlineMs = scaled(40_000)

  test.each([2, 3])('sums and averages rank+1 on %i processes, bitwise identical', async (worldSize) => {
    const lengths = [0, 1, worldSize + 1, 1009, 1 << 20]
    for (const average of [false, true]) {
      const results = await runInProcesses<object, AllReduceOutcome[]>({
        worldSize, scenario, exportName: 'allReduceRankPlusOne', params: { lengths, segmentBytes: 64 * 1024, average }, deadlineMs,
      })
      for (const [rank, outcomes] of results.entries()) {
        for (const outcome of outcomes) expect(outcome.closedFormCorrect, `rank ${rank} length ${outcome.length} average ${average}`).toBe(true)
      }
      // every rank hashed the same bytes
      for (let i = 0; i < lengths.length; i++) expect(new Set(results.map((r) => r[i]!.sha256)).size).toBe(1)
    }
  }, runInProcessesTimeout(deadlineMs, 2))

  test('random contributions give the same bytes on 4 processes', async () => {
    const results = await runInProcesses<object, { sha256: string }>({
      worldSize: 4, scenario, exportName: 'allReduceRandom', params: { length: 100_003, seed: 7, segmentBytes: 4096 }, deadlineMs,
    })
    expect(new Set(results.map((r) => r.sha256)).size).toBe(1)
  }, runInProcessesTimeout(deadlineMs))

  test('barrier, broadcast and all-gather on 3 processes', async () => {
    const results = await runInProcesses<object, { broadcastOk: boolean; gathered: number[] }>({
      worldSize: 3, scenario, exportName: 'otherCollectives', params: { length: 50_000 }, deadlineMs,
    })
    for (const result of results) expect(result).toEqual({ broadcastOk: true, gathered: [0, 10, 20] })
  }, runInProcessesTimeout(deadlineMs))
})

/** Resolves every receive a few milliseconds after the message arrived. */
class LateReader implements Transport {
  constructor(private readonly inner: Transport) {}
  get rank() { return this.inner.rank }
  get worldSize() { return this.inner.worldSize }
  send(peer: number, tag: Tag, bytes: Uint8Array) { return this.inner.send(peer, tag, bytes) }
  async recv(peer: number, tag: Tag, options: { timeoutMs: number }) {
    const bytes = await this.inner.recv(peer, tag, options)
    await new Promise((resolve) => setTimeout(resolve, 2))
    return bytes
  }
  close() { return this.inner.close() }
}
