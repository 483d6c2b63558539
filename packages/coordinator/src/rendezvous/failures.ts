/**
 * The coordinator's decisions about failure: a worker's own WorkerFailed, a participant
 * whose heartbeats stopped, a worker process the launcher saw exit, a shutdown request, and
 * messages rejected at the edge. Unless the job is elastic (elastic.ts), any lost rank fails the job,
 * and the first failure by time is its root cause (the others are listed under it).
 */
import { MessageType, controlMessage, type WireError, type WorkerFailed } from '@ringtrain/core'
import { broadcast, log } from './actions.js'
import { describeParticipant, describeWorker } from './assign-ranks.js'
import { drop, edgeErrorForSender, flushDropLog, rejectMessage, sendReject } from './drops.js'
import { decideStall, reportStall } from './stall.js'
import { elasticTick, loseParticipant } from './elastic.js'
import type { JobSummary, Participant, RendezvousAction, RendezvousEvent, RendezvousState } from './types.js'

/**
 * A worker's own report that it failed. Acted on from a participant of the current round
 * (naming its own rank, when it names one) or from a worker on the wait list (one that
 * failed before its Assignment, e.g. its task did not load); from anyone else it is
 * dropped and counted, so a stranger on the port cannot stop the job.
 */
export function decideFailed(state: RendezvousState, from: string, message: WorkerFailed, now: number, actions: RendezvousAction[]): void {
  const participant = state.participants[from]
  const waiting = state.waitList.find((w) => w.identity === from)
  if (participant === undefined && waiting === undefined) {
    return drop(state, 'notParticipant', from, now, `Dropped a WorkerFailed from worker ${from.slice(0, 8)}, which neither waits nor takes part in round ${state.round} (phase ${state.phase}).`, actions)
  }
  if (participant !== undefined && message.rank !== undefined && message.rank !== participant.rank) {
    return drop(state, 'wrongRankOrRound', from, now, `Dropped a WorkerFailed from ${describeParticipant(participant)} that names rank ${message.rank}; it is rank ${participant.rank} of round ${state.round}.`, actions)
  }
  const rank = participant?.rank ?? message.rank
  const who = describeWorker((participant ?? waiting)!)
  const reason = `${who} failed: ${message.error.name} [${message.error.code}]: ${message.error.message}`
  // A collective timed out: where every rank stood says which one the others waited for.
  if (participant !== undefined && state.phase === 'running' && message.error.code === 'E_TIMEOUT') {
    reportStall(state, 'timeout', `${who} timed out`, now, actions)
  }
  failJob(state, { atMs: now, rank, reason, error: message.error }, 1, actions)
}

/**
 * The world must fill within `joinTimeoutMs` of the coordinator's start, like PyTorch's
 * rendezvous join timeout: a job never waits forever for a worker that will not come.
 */
function decideJoinDeadline(state: RendezvousState, now: number, actions: RendezvousAction[]): void {
  state.waitingSinceMs ??= now
  const waitedMs = now - state.waitingSinceMs
  if (waitedMs <= state.config.joinTimeoutMs) return
  const { worldSize, jobId, joinTimeoutMs } = state.config
  const joined = state.waitList.map((w) => `pid ${w.pid} on ${w.host}`).join(', ') || 'none'
  const reason = `only ${state.waitList.length} of ${worldSize} workers joined job ${JSON.stringify(jobId)} within ${joinTimeoutMs / 1000} s (joined: ${joined}); stopping the job. Start the missing workers with \`ringtrain worker --coordinator …\`, or ask for fewer with -n.`
  const error: WireError = { name: 'CollectiveTimeoutError', code: 'E_TIMEOUT', message: reason, context: { expected: worldSize, got: state.waitList.length } }
  failJob(state, { atMs: now, reason, error }, 1, actions)
}

/**
 * On every tick: drops waiting workers that stopped answering keep-alives, fails the job on a
 * missed join deadline, declares lost every participant whose last heartbeat is older than
 * keepAliveIntervalMs × keepAliveMaxMissed, and sends the coordinator's own KeepAlive to
 * every waiting and participating worker once per keepAliveIntervalMs.
 */
export function decideTick(state: RendezvousState, now: number, actions: RendezvousAction[]): void {
  if (state.phase === 'waiting') {
    expireWaiting(state, now, actions)
    decideJoinDeadline(state, now, actions)
  } else if (state.phase === 'running' || state.phase === 'regrouping') {
    decideLost(state, now, actions)
    failExited(state, now, actions)
    if (state.phase === 'running') decideStall(state, now, actions)
    elasticTick(state, now, actions, (failure) => failJob(state, failure, 1, actions))
  }
  if (state.phase === 'waiting' || state.phase === 'running' || state.phase === 'regrouping') sendKeepAlive(state, now, actions)
  flushDropLog(state, now, actions)
}

function decideLost(state: RendezvousState, now: number, actions: RendezvousAction[]): void {
  const deadlineMs = state.keepAliveIntervalMs * state.keepAliveMaxMissed
  for (const participant of Object.values(state.participants)) {
    if (state.doneReports[participant.rank] !== undefined) continue
    const silentMs = now - participant.lastHeartbeatAt
    if (silentMs <= deadlineMs) continue
    const missed = Math.floor(silentMs / state.keepAliveIntervalMs)
    const last = `${describeParticipant(participant)} missed ${missed} heartbeats (last one ${(silentMs / 1000).toFixed(1)} s ago); stopping the job. Elastic mode is off (--min-workers).`
    // With a liveness thread, step length does not matter: the whole process went quiet.
    const reason = participant.livenessIdentity !== undefined
      ? `${last} Neither its liveness thread nor its main thread was heard: the process is stopped, hung or unreachable.`
      : `${last} If its steps take longer than ${deadlineMs / 1000} s (slow backend, large batch), raise --heartbeat-max-missed.`
    if (state.phase === 'running') reportStall(state, 'lost', `${describeParticipant(participant)} is declared lost`, now, actions)
    if (loseParticipant(state, participant, reason, now, actions)) continue
    // Fail first, so the Abort reaches this participant too: it may be stalled, not gone.
    failJob(state, lostError(participant, reason, now, { expected: `a heartbeat every ${state.keepAliveIntervalMs} ms`, got: `none for ${silentMs} ms` }), 1, actions)
    delete state.participants[participant.identity]
  }
}

/**
 * Removes waiting workers silent for keepAliveIntervalMs × keepAliveMaxMissed (a worker that
 * gave up or died before the world filled), so a later join never fills the world with them.
 * The worker hears why in a Reject, should it still be there.
 */
function expireWaiting(state: RendezvousState, now: number, actions: RendezvousAction[]): void {
  const deadlineMs = state.keepAliveIntervalMs * state.keepAliveMaxMissed
  const silent = state.waitList.filter((w) => now - w.lastHeartbeatAt > deadlineMs)
  if (silent.length === 0) return
  state.waitList = state.waitList.filter((w) => now - w.lastHeartbeatAt <= deadlineMs)
  for (const worker of silent) {
    const silentS = ((now - worker.lastHeartbeatAt) / 1000).toFixed(1)
    const missed = Math.floor((now - worker.lastHeartbeatAt) / state.keepAliveIntervalMs)
    actions.push(log(`pid ${worker.pid} on ${worker.host} answered none of the last ${missed} keep-alives (silent for ${silentS} s) while it waited; removed it from the wait list (${state.waitList.length} of ${state.config.worldSize} workers wait).`))
    const message = `The coordinator removed pid ${worker.pid} on ${worker.host} from its wait list: it answered no keep-alive for ${silentS} s (limit ${deadlineMs / 1000} s). Start the worker again.`
    const error: WireError = { name: 'PeerLostError', code: 'E_PEER_LOST', message, context: { expected: `a keep-alive answer every ${state.keepAliveIntervalMs} ms`, got: `none for ${now - worker.lastHeartbeatAt} ms` } }
    actions.push({ kind: 'send', to: worker.identity, message: rejectMessage(state, error) })
  }
}

/** The coordinator's proof of life, once per keepAliveIntervalMs, to every waiting and participating worker and every bound liveness thread. */
function sendKeepAlive(state: RendezvousState, now: number, actions: RendezvousAction[]): void {
  const last = state.lastKeepAliveSentAtMs
  if (last !== undefined && now - last < state.keepAliveIntervalMs) return
  state.lastKeepAliveSentAtMs = now
  const keepAlive = broadcast(state, controlMessage(MessageType.KeepAlive, state.config.jobId, { intervalMs: state.keepAliveIntervalMs, maxMissed: state.keepAliveMaxMissed }))
  if (keepAlive.kind !== 'broadcast') return
  // Liveness threads hear it too: a worker whose main thread computes still knows the coordinator lives.
  for (const p of [...Object.values(state.participants), ...state.waitList]) if (p.livenessIdentity !== undefined) keepAlive.to.push(p.livenessIdentity)
  if (keepAlive.to.length > 0) actions.push(keepAlive)
}

/**
 * The launcher saw a worker process end. A clean exit after WorkerDone is fine; any other
 * exit fails the job once `exitGraceMs` passed without the worker's own WorkerFailed
 * (which names the real cause and may still be in flight).
 */
export function decideWorkerExited(state: RendezvousState, event: Extract<RendezvousEvent, { kind: 'workerExited' }>, now: number, actions: RendezvousAction[]): void {
  const how = event.signal !== null ? `was killed by ${event.signal}` : `exited with code ${event.code}`
  const waiting = state.waitList.findIndex((w) => w.pid === event.pid)
  if (waiting >= 0) {
    const [worker] = state.waitList.splice(waiting, 1)
    actions.push(log(`pid ${event.pid} on ${worker!.host} ${how} before the job started; removed it from the wait list (${state.waitList.length} of ${state.config.worldSize} workers wait).`))
    return
  }
  const participant = Object.values(state.participants).find((p) => p.pid === event.pid)
  if (participant === undefined) {
    actions.push(log(`pid ${event.pid} ${how}; it is not a participant of job ${JSON.stringify(state.config.jobId)}.`))
    return
  }
  const clean = event.code === 0 && state.doneReports[participant.rank] !== undefined
  if (clean || (state.phase !== 'running' && state.phase !== 'regrouping')) {
    actions.push(log(`${describeParticipant(participant)} ${how}.`))
    return
  }
  participant.exited = { code: event.code, signal: event.signal, atMs: now }
  failExited(state, now, actions)
}

export function decideShutdownRequested(state: RendezvousState, event: Extract<RendezvousEvent, { kind: 'shutdownRequested' }>, now: number, actions: RendezvousAction[]): void {
  if (state.phase === 'finished' || state.phase === 'failed') {
    actions.push(log(`Ignored a shutdown request (${event.reason}): the job has already ${state.phase}.`))
    return
  }
  const reason = `The job was stopped: ${event.reason}.`
  failJob(state, { atMs: now, reason, error: { name: 'DistError', code: 'E_CLOSED', message: reason, context: {} } }, event.exitCode ?? 1, actions)
}

/**
 * The coordinator could not write to the output folder (metrics.jsonl on a full or read-only
 * disk): the job stops like on any other failure, so no worker trains on while its record is
 * lost. The workers' Abort carries the error, which names the path and the errno code.
 */
export function decideOutputFailed(state: RendezvousState, event: Extract<RendezvousEvent, { kind: 'outputFailed' }>, now: number, actions: RendezvousAction[]): void {
  const reason = `The coordinator stops the job: ${event.error.message}`
  failJob(state, { atMs: now, reason, error: event.error }, 1, actions)
}

/**
 * A message refused at the edge (or a type only the coordinator sends): counted and logged
 * (at most once per sender per interval). A sender that is not a participant (a worker
 * joining with a malformed JoinRequest, another version, another job) hears why in a Reject,
 * rather than waiting out its join timeout, at most once per interval and without this
 * job's id; a waiting worker refused so leaves the wait list.
 */
export function decideInvalidMessage(state: RendezvousState, from: string, error: WireError, now: number, actions: RendezvousAction[]): void {
  drop(state, 'invalid', from, now, error.message, actions)
  if (state.participants[from] !== undefined) return
  const waiting = state.waitList.findIndex((w) => w.identity === from)
  if (waiting >= 0) {
    const [worker] = state.waitList.splice(waiting, 1)
    actions.push(log(`Removed pid ${worker!.pid} on ${worker!.host} from the wait list: its message was refused (${state.waitList.length} of ${state.config.worldSize} workers wait).`))
  }
  sendReject(state, from, edgeErrorForSender(error), now, actions)
}

function failExited(state: RendezvousState, now: number, actions: RendezvousAction[]): void {
  for (const participant of Object.values(state.participants)) {
    const exited = participant.exited
    if (exited === undefined || now - exited.atMs < state.exitGraceMs) continue
    // Its WorkerDone came after the launcher saw the clean exit: a clean end, not a loss.
    if (exited.code === 0 && state.doneReports[participant.rank] !== undefined) continue
    delete state.participants[participant.identity]
    const how = exited.signal !== null ? `was killed by ${exited.signal}` : `exited with code ${exited.code}`
    const reason = `${describeParticipant(participant)} ${how} before reporting done; stopping the job. Elastic mode is off (--min-workers).`
    if (loseParticipant(state, participant, reason, now, actions)) continue
    failJob(state, lostError(participant, reason, exited.atMs, { expected: 'a WorkerDone before exit', got: how }), 1, actions)
  }
}

function lostError(participant: Participant, reason: string, atMs: number, context: { expected: string; got: string }) {
  const error: WireError = { name: 'PeerLostError', code: 'E_PEER_LOST', message: reason, context: { rank: participant.rank, ...context } }
  return { atMs, rank: participant.rank, reason, error }
}

/**
 * Records a failure. The first one moves the job to `failed`, tells every worker to stop
 * (Abort) and the server to exit with `exitCode`; later ones are listed under it.
 */
export function failJob(state: RendezvousState, failure: RendezvousState['failures'][number], exitCode: number, actions: RendezvousAction[], summary?: JobSummary): void {
  state.failures.push(failure)
  if (state.phase === 'finished' || state.phase === 'failed') {
    actions.push(log(`After the job ${state.phase}, this failure was also reported: ${failure.reason}`))
    return
  }
  state.phase = 'failed'
  actions.push(log(failure.reason))
  actions.push(broadcast(state, controlMessage(MessageType.Abort, state.config.jobId, { reason: failure.reason, error: failure.error })))
  actions.push({ kind: 'progress', event: { type: 'failed', reason: failure.reason, exitCode } })
  actions.push({ kind: 'fail', reason: failure.reason, exitCode, error: failure.error, failures: state.failures, ...(summary !== undefined ? { summary } : {}) })
}
