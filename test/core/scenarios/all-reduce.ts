/**
 * Scenarios run in one OS process per rank by test/helpers/process-world.ts
 * (`runInProcesses({ worldSize, scenario: <this file>, exportName, params, deadlineMs })`),
 * each over a ZmqTransport. They return JSON that the test compares across ranks.
 */
import { createHash } from 'node:crypto'
import { allGather, barrier, broadcast, ringAllReduce, type Transport } from '@ringtrain/core'

export interface AllReduceParams { lengths: number[]; segmentBytes?: number; average?: boolean; timeoutMs?: number }
export interface AllReduceOutcome { length: number; first: number | null; last: number | null; closedFormCorrect: boolean; sha256: string }

/** Ring all-reduce of rank+1 for each length; reports whether every element is W(W+1)/2 (or its average). */
export async function allReduceRankPlusOne(transport: Transport, params: AllReduceParams, rank: number): Promise<AllReduceOutcome[]> {
  const { worldSize } = transport
  const sum = (worldSize * (worldSize + 1)) / 2
  const expected = Math.fround(params.average ? sum / worldSize : sum)
  const outcomes: AllReduceOutcome[] = []
  let op = 0
  for (const length of params.lengths) {
    const data = new Float32Array(length).fill(rank + 1)
    await ringAllReduce(transport, data, {
      step: 0, op: op++, timeoutMs: params.timeoutMs ?? 20_000, segmentBytes: params.segmentBytes, average: params.average,
    })
    outcomes.push({
      length,
      first: length > 0 ? data[0]! : null,
      last: length > 0 ? data[length - 1]! : null,
      closedFormCorrect: data.every((x) => x === expected),
      sha256: createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex'),
    })
  }
  return outcomes
}

/** Seeded pseudo-random contributions: the ranks' hashes must match (bitwise identity). */
export async function allReduceRandom(transport: Transport, params: { length: number; seed: number; segmentBytes?: number }, rank: number): Promise<{ sha256: string }> {
  let state = (params.seed * 7919 + rank) >>> 0
  const data = Float32Array.from({ length: params.length }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return state / 2 ** 32 - 0.5
  })
  await ringAllReduce(transport, data, { step: 0, op: 0, timeoutMs: 20_000, segmentBytes: params.segmentBytes })
  return { sha256: createHash('sha256').update(new Uint8Array(data.buffer)).digest('hex') }
}

/** Barrier, broadcast from the last rank, and all-gather of ranks, back to back. */
export async function otherCollectives(transport: Transport, params: { length: number }, rank: number): Promise<{ broadcastOk: boolean; gathered: number[] }> {
  const { worldSize } = transport
  await barrier(transport, { step: 0, op: 0, timeoutMs: 20_000 })
  const data = new Float32Array(params.length).map((_, i) => (rank === worldSize - 1 ? i : -1))
  await broadcast(transport, data, { root: worldSize - 1, step: 0, op: 1, timeoutMs: 20_000, segmentBytes: 4096 })
  const gathered = await allGather(transport, new Float32Array([rank * 10]), { step: 0, op: 2, timeoutMs: 20_000 })
  return { broadcastOk: data.every((x, i) => x === i), gathered: gathered.map((b) => b[0]!) }
}
