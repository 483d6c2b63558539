/**
 * Elastic rounds (`--min-workers`): a lost worker no longer ends the job.
 *
 *   running ──(a rank lost, or a rank's round broke)──▶ regrouping ──(every survivor joined
 *   again, at least minWorkers)──▶ running (round + 1)
 *
 * The coordinator sends Regroup to the remaining participants; each ends its round (at once
 * when a rank was lost, abandoning the step in flight, which no rank applied; at the next
 * step boundary when a new worker waits to join) and sends a JoinRequest again from the same
 * connection, with the endpoints of a fresh ring socket. Once all of them are back (or were
 * lost meanwhile), the next round starts with them and any waiting newcomers (up to
 * maxWorkers); its Assignment names `stateFrom`, a survivor whose weights, optimizer state,
 * step and data position every rank takes by broadcast. Below minWorkers the job waits
 * elasticTimeoutMs for workers, then stops naming the lost ranks and how to resume.
 */
import { MessageType, controlMessage, type JoinRequest, type WireError } from '@ringtrain/core'
import { log } from './actions.js'
import { describeParticipant } from './assign-ranks.js'
import { startRound } from './start-round.js'
import { waitingWorker } from './rank-hints.js'
import type { Participant, RendezvousAction, RendezvousState, WaitingWorker } from './types.js'

export function isElastic(state: RendezvousState): boolean {
  return state.config.minWorkers !== undefined
}

function maxWorkers(state: RendezvousState): number {
  return state.config.maxWorkers ?? state.config.worldSize
}

/**
 * How many workers the next round will have, counting those still in the current one but
 * not those the launcher saw exit (a restarted worker may join before its predecessor's
 * exit grace ran out).
 */
function headcount(state: RendezvousState): number {
  return Object.values(state.participants).filter((p) => p.exited === undefined).length + state.waitList.length
}

/**
 * A participant is lost (heartbeats, exit): in elastic mode the others regroup without it.
 * Returns false when the job is not elastic (the caller fails the job as before).
 */
export function loseParticipant(state: RendezvousState, participant: Participant, reason: string, now: number, actions: RendezvousAction[]): boolean {
  if (!isElastic(state) || (state.phase !== 'running' && state.phase !== 'regrouping')) return false
  // Training is over once a rank reported done: the others cannot train on; the job fails as any other.
  if (Object.keys(state.doneReports).length > 0) return false
  delete state.participants[participant.identity]
  // It may be alive (stopped, cut off): it must not go on writing or computing for this job.
  actions.push({ kind: 'send', to: participant.identity, message: controlMessage(MessageType.Abort, state.config.jobId, { reason: `the job went on without ${describeParticipant(participant)}` }) })
  // The failure texts end with what a job that is not elastic does; this one goes on.
  const what = reason.replace(/;? stopping the job\..*$/s, '')
  state.lost.push({ rank: participant.rank, round: state.round, pid: participant.pid, host: participant.host, reason: what, atMs: now })
  actions.push(log(`${what}; the other workers go on in a new round (--min-workers ${state.config.minWorkers}).`))
  beginRegroup(state, `${describeParticipant(participant)} was lost`, false, now, actions)
  return true
}

/**
 * A JoinRequest while the job runs or regroups, in elastic mode. From a participant: its
 * round ended (Regroup, or it saw a collective fail first); it waits for the next round with
 * its new ring endpoints. From a new worker: it waits, and the participants regroup at the
 * next step boundary to take it in, while the world is below maxWorkers. Returns false when
 * the join is not for elastic handling (the caller refuses it as before).
 */
export function elasticJoin(state: RendezvousState, from: string, join: JoinRequest, now: number, actions: RendezvousAction[]): boolean {
  if (!isElastic(state) || (state.phase !== 'running' && state.phase !== 'regrouping')) return false
  const participant = state.participants[from]
  if (participant !== undefined) {
    delete state.participants[from]
    state.previousRanks[from] = participant.rank
    const { rank: _rank, step: _step, exited: _exited, position: _position, ...rest } = participant
    state.waitList.push({ ...rest, dataEndpoints: join.dataEndpoints, lastHeartbeatAt: now })
    if (state.phase === 'running' && state.boundaryRegroupAsked) {
      // The round ends at the step boundary the coordinator asked for. Should this rank have
      // left it early (a collective broke), the others must not wait out the step timeout.
      const to = Object.keys(state.participants)
      if (to.length > 0) actions.push({ kind: 'broadcast', to, message: controlMessage(MessageType.Regroup, state.config.jobId, { round: state.round, reason: `${describeParticipant(participant)} ended round ${state.round}`, atStepBoundary: 0 }) })
      state.phase = 'regrouping'
      state.regroupingSinceMs = now
    } else if (state.phase === 'running') {
      // This rank saw its round break before the coordinator knew why: end it for all.
      beginRegroup(state, `${describeParticipant(participant)} ended round ${state.round}`, false, now, actions)
    }
    tryStartRound(state, now, actions)
    return true
  }
  if (state.waitList.some((w) => w.identity === from)) return true
  if (headcount(state) >= maxWorkers(state)) return false
  state.waitList.push(waitingWorker(from, join, now))
  actions.push(log(`pid ${join.pid} on ${join.host} joined the running job; the workers take it in at the next step boundary (${headcount(state)} of at most ${maxWorkers(state)}).`))
  if (state.phase === 'running') beginRegroup(state, `pid ${join.pid} on ${join.host} joined`, true, now, actions)
  else tryStartRound(state, now, actions)
  return true
}

/** On every tick while regrouping: start the round once possible, or stop after elasticTimeoutMs below minWorkers. */
export function elasticTick(state: RendezvousState, now: number, actions: RendezvousAction[], fail: (failure: RendezvousState['failures'][number]) => void): void {
  if (state.phase !== 'regrouping') return
  tryStartRound(state, now, actions)
  if (state.phase !== 'regrouping') return
  const since = state.regroupingSinceMs ?? now
  if (now - since <= state.config.elasticTimeoutMs) return
  // Enough are back, but some never came (stuck, unreachable): go on without them.
  const stragglers = Object.values(state.participants)
  if (stragglers.length > 0 && state.waitList.length >= state.config.minWorkers!) {
    for (const p of stragglers) {
      delete state.participants[p.identity]
      const reason = `${describeParticipant(p)} did not join round ${state.round + 1} within ${state.config.elasticTimeoutMs / 1000} s`
      state.lost.push({ rank: p.rank, round: state.round, pid: p.pid, host: p.host, reason, atMs: now })
      actions.push(log(`${reason}; the others go on without it.`))
      actions.push({ kind: 'send', to: p.identity, message: controlMessage(MessageType.Abort, state.config.jobId, { reason }) })
    }
    tryStartRound(state, now, actions)
    return
  }
  const lost = state.lost.map((l) => `rank ${l.rank} of round ${l.round} (pid ${l.pid} on ${l.host})`).join(', ') || 'none'
  const reason = `only ${headcount(state)} worker(s) left, fewer than --min-workers ${state.config.minWorkers}, for ${state.config.elasticTimeoutMs / 1000} s; stopping the job. Lost: ${lost}. Continue from the newest checkpoint with \`ringtrain launch --resume ${state.config.outDir} …\` (or coordinator --resume).`
  const error: WireError = { name: 'PeerLostError', code: 'E_PEER_LOST', message: reason, context: { expected: `at least ${state.config.minWorkers} workers`, got: headcount(state) } }
  const survivors = state.waitList.filter((w) => state.previousRanks[w.identity] !== undefined)
  if (survivors.length === 0 || Object.keys(state.participants).length > 0) return fail({ atMs: now, reason, error })
  // The survivors hold the newest state: one last round that stops at its first step
  // boundary, so rank 0 checkpoints it; the job then fails with `reason` (decide.ts).
  state.belowMinimum = { atMs: now, reason, error }
  state.stopRequested = reason
  state.round++
  state.waitList = survivors
  state.config = { ...state.config, worldSize: survivors.length }
  state.barrierArrivals = {}
  state.stepReports = {}
  const previousRanks = state.previousRanks
  state.previousRanks = {}
  startRound(state, now, actions, { why: `fewer than --min-workers ${state.config.minWorkers}: a last round to checkpoint`, previousRanks })
  actions.push({ kind: 'broadcast', to: Object.keys(state.participants), message: controlMessage(MessageType.StopRequest, state.config.jobId, { reason: `fewer than --min-workers ${state.config.minWorkers} workers are left` }) })
}

function beginRegroup(state: RendezvousState, why: string, atStepBoundary: boolean, now: number, actions: RendezvousAction[]): void {
  if (state.phase === 'running' && (!atStepBoundary || !state.boundaryRegroupAsked)) {
    const to = Object.keys(state.participants)
    if (to.length > 0) actions.push({ kind: 'broadcast', to, message: controlMessage(MessageType.Regroup, state.config.jobId, { round: state.round, reason: why, atStepBoundary: atStepBoundary ? 1 : 0 }) })
    actions.push(log(`Round ${state.round} ends${atStepBoundary ? ' at the next step boundary' : ''}: ${why}.`))
    state.boundaryRegroupAsked = atStepBoundary
  }
  if (!atStepBoundary && state.phase === 'running') {
    state.phase = 'regrouping'
    state.regroupingSinceMs = now
    state.nextRoundWhy = why
  } else {
    state.nextRoundWhy ??= why
  }
  tryStartRound(state, now, actions)
}

/** Starts the next round when every participant of the last one joined again (or was lost) and enough workers wait. */
function tryStartRound(state: RendezvousState, now: number, actions: RendezvousAction[]): void {
  if (Object.keys(state.participants).length > 0) return
  if (state.phase === 'running') {
    // All participants came back (boundary regroup) before any was lost.
    state.phase = 'regrouping'
    state.regroupingSinceMs = now
  }
  if (state.phase !== 'regrouping' || state.waitList.length < state.config.minWorkers!) return
  // Survivors first, in their old rank order, so that rank 0 holds the state; newcomers after.
  const previousRanks = state.previousRanks
  const old = (w: WaitingWorker) => previousRanks[w.identity] ?? Number.MAX_SAFE_INTEGER
  state.waitList.sort((a, b) => old(a) - old(b))
  const taken = state.waitList.slice(0, maxWorkers(state))
  const waiting = state.waitList.slice(taken.length)
  const survivors = taken.filter((w) => previousRanks[w.identity] !== undefined)
  if (survivors.length === 0) return
  state.round++
  state.waitList = taken
  state.config = { ...state.config, worldSize: taken.length }
  state.barrierArrivals = {}
  state.stepReports = {}
  state.boundaryRegroupAsked = false
  state.regroupingSinceMs = undefined
  const why = state.nextRoundWhy ?? 'regrouped'
  state.nextRoundWhy = undefined
  state.previousRanks = {}
  startRound(state, now, actions, { why, previousRanks })
  state.waitList.push(...waiting)
  // A graceful stop asked for between rounds: the new round stops at its first step boundary.
  if (state.stopRequested !== undefined) actions.push({ kind: 'broadcast', to: Object.keys(state.participants), message: controlMessage(MessageType.StopRequest, state.config.jobId, { reason: state.stopRequested }) })
}
