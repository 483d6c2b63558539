/**
 * Rank assignment when the world is full. Workers are grouped by host (hosts in the order
 * their first worker joined), then ordered by the localRank a launcher gave them, then by
 * join order; ranks are handed out in that order, so the local ranks of a host are
 * contiguous (as torchrun and Horovod do), and the ring crosses each host boundary once.
 */
import type { Participant, WaitingWorker } from './types.js'

export function assignRanks(waitList: readonly WaitingWorker[], nowMs: number): Participant[] {
  const hosts: string[] = []
  for (const worker of waitList) if (!hosts.includes(worker.host)) hosts.push(worker.host)
  const participants: Participant[] = []
  for (const host of hosts) {
    const local = waitList
      .map((worker, joinOrder) => ({ worker, joinOrder }))
      .filter(({ worker }) => worker.host === host)
      .sort((a, b) => byLocalRank(a.worker, b.worker) || a.joinOrder - b.joinOrder)
    local.forEach(({ worker }, localRank) => {
      const { localRank: _asked, ...rest } = worker
      participants.push({ ...rest, rank: participants.length, localRank, lastHeartbeatAt: nowMs, step: 0 })
    })
  }
  return participants
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
