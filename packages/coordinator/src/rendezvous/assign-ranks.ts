/**
 * Rank assignment when the world is full. A worker whose scheduler gave it a rank
 * (rank-hints.ts) gets that rank when it is below the round's size and no earlier joiner
 * holds it. The others fill the free ranks in this order: grouped by host (hosts in the
 * order their first worker joined), then by the localRank a launcher gave them, then by join
 * order; so without hints the local ranks of a host are contiguous (as torchrun and Horovod
 * do), and the ring crosses each host boundary once. Local ranks number a host's workers in
 * rank order.
 */
import type { Participant, WaitingWorker } from './types.js'

export function assignRanks(waitList: readonly WaitingWorker[], nowMs: number): Participant[] {
  const size = waitList.length
  const byRank: (WaitingWorker | undefined)[] = new Array<WaitingWorker | undefined>(size).fill(undefined)
  const placed = new Set<WaitingWorker>()
  for (const worker of waitList) {
    const hint = worker.rankHint
    if (hint === undefined || hint >= size || byRank[hint] !== undefined) continue
    byRank[hint] = worker
    placed.add(worker)
  }
  const rest = groupedByHost(waitList).filter((worker) => !placed.has(worker))
  for (let rank = 0; rank < size; rank++) byRank[rank] ??= rest.shift()
  const nextLocalRank = new Map<string, number>()
  return byRank.map((worker, rank) => {
    const { localRank: _asked, ...fields } = worker!
    const localRank = nextLocalRank.get(fields.host) ?? 0
    nextLocalRank.set(fields.host, localRank + 1)
    return { ...fields, rank, localRank, lastHeartbeatAt: nowMs, step: 0 }
  })
}

/** Workers grouped by host (in the order each host's first worker joined), each host's by localRank, then join order. */
function groupedByHost(waitList: readonly WaitingWorker[]): WaitingWorker[] {
  const hosts: string[] = []
  for (const worker of waitList) if (!hosts.includes(worker.host)) hosts.push(worker.host)
  return hosts.flatMap((host) => waitList
    .map((worker, joinOrder) => ({ worker, joinOrder }))
    .filter(({ worker }) => worker.host === host)
    .sort((a, b) => byLocalRank(a.worker, b.worker) || a.joinOrder - b.joinOrder)
    .map(({ worker }) => worker))
}

/** Workers with a localRank come first, in localRank order; the others keep their join order. */
function byLocalRank(a: WaitingWorker, b: WaitingWorker): number {
  if (a.localRank === undefined || b.localRank === undefined) {
    return (a.localRank === undefined ? 1 : 0) - (b.localRank === undefined ? 1 : 0)
  }
  return a.localRank - b.localRank
}

/** Number of participants on each participant's host, by rank. */
export function localWorldSizes(participants: readonly Participant[]): number[] {
  return participants.map((p) => participants.filter((q) => q.host === p.host).length)
}

/** `rank 2 (pid 1234 on host-a)`: how the coordinator names a participant in messages. */
export function describeParticipant(p: Pick<Participant, 'rank' | 'pid' | 'host'>): string {
  return `rank ${p.rank} (pid ${p.pid} on ${p.host})`
}

/** A participant as describeParticipant does; a worker still waiting as `pid 1234 on host-a`. */
export function describeWorker(w: Pick<WaitingWorker, 'pid' | 'host'> & { rank?: number }): string {
  return w.rank !== undefined ? describeParticipant({ rank: w.rank, pid: w.pid, host: w.host }) : `pid ${w.pid} on ${w.host}`
}
