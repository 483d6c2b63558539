/**
 * Starts a round with the workers on the wait list: assigns ranks, sends each its
 * Assignment, records the round for summary.json. The first round starts when the world is
 * full (decide.ts); later ones when an elastic job regrouped (elastic.ts), and then the
 * Assignment names `stateFrom`: the survivor with the lowest rank in the last round, whose
 * state every rank takes.
 */
import { MessageType, controlMessage } from '@ringtrain/core'
import { log } from './actions.js'
import { assignRanks, describeParticipant, localWorldSizes } from './assign-ranks.js'
import type { RendezvousAction, RendezvousState } from './types.js'

export function startRound(state: RendezvousState, now: number, actions: RendezvousAction[], options: { why: string; previousRanks?: Record<string, number> }): void {
  const participants = assignRanks(state.waitList, now)
  const localSizes = localWorldSizes(participants)
  const peers = participants.map((p) => p.dataEndpoints)
  const hosts = participants.map((p) => p.host)
  // A state to share exists once a round trained; before that every round starts like the first (initial weights, or the checkpoint resumed from).
  const trained = state.rounds.some((r) => r.firstStep !== undefined)
  const previous = trained ? options.previousRanks : undefined
  const holder = previous === undefined ? undefined : participants
    .filter((p) => previous[p.identity] !== undefined)
    .sort((a, b) => previous[a.identity]! - previous[b.identity]!)[0]
  state.waitList = []
  state.phase = 'running'
  state.doneReports = {}
  for (const p of participants) {
    state.participants[p.identity] = p
    const assignment = controlMessage(MessageType.Assignment, state.config.jobId, {
      rank: p.rank, worldSize: participants.length, localRank: p.localRank, localWorldSize: localSizes[p.rank]!, round: state.round, peers, hosts, config: state.config,
      ...(holder !== undefined ? { stateFrom: holder.rank } : {}),
    })
    actions.push({ kind: 'send', to: p.identity, message: assignment })
  }
  const members = participants.map(describeParticipant)
  state.rounds.push({ round: state.round, worldSize: participants.length, members, why: options.why })
  const distinctHosts = [...new Set(hosts)]
  const from = holder !== undefined ? `; every rank takes the state of rank ${holder.rank}` : ''
  actions.push(log(`Round ${state.round} starts with ${participants.length} workers on ${distinctHosts.length} host(s) (${options.why}): ${members.join(', ')}${from}.`))
  actions.push({ kind: 'progress', event: { type: 'started', round: state.round, worldSize: participants.length, hosts: distinctHosts } })
}
