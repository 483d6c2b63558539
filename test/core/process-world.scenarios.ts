/** Scenarios for process-world.test.ts; each runs in its own process, one per rank. */
import type { Transport } from '@ringtrain/core'

const tag = { round: 0, step: 0, op: 0, collective: 0, ringStep: 0, segment: 0 }

/** Each rank sends its rank to the next, ring-wise, and returns what it got from the previous. */
export async function passRankAlongRing(t: Transport, params: { timeoutMs: number }, rank: number): Promise<{ rank: number; got: number; pid: number }> {
  const right = (rank + 1) % t.worldSize
  const left = (rank - 1 + t.worldSize) % t.worldSize
  const sent = t.send(right, tag, new Uint8Array([rank]))
  const got = await t.recv(left, tag, { timeoutMs: params.timeoutMs })
  await sent
  return { rank, got: got[0]!, pid: process.pid }
}

/** Rank `params.stuckRank` waits for a message nobody sends; the others finish. */
export async function oneRankHangs(t: Transport, params: { stuckRank: number }, rank: number): Promise<number> {
  if (rank === params.stuckRank) await new Promise(() => {})
  return rank
}

/** Rank 1 waits for a message nobody sends, and times out with a typed error. */
export async function rankOneTimesOut(t: Transport, params: { timeoutMs: number }, rank: number): Promise<number> {
  if (rank === 1) await t.recv(0, { ...tag, step: 9 }, { timeoutMs: params.timeoutMs })
  return rank
}
