/**
 * The coordinator's decisions: `(state, event, now) → { state, actions }`. Pure: no sockets,
 * no timers, no clock (PyTorch's `_RendezvousJoinOp` deciding an `_Action`). The server
 * (../server.ts) feeds it events and carries out the actions.
 *
 * Phases: `waiting` (joins fill the waitList) → `running` (ranks assigned) → `finished`
 * (every rank done) or `failed` (a worker failed, was lost, or shutdown was requested).
 */
import { MessageType, PROTOCOL_VERSION, controlMessage, type JobConfig, type WireError } from '@ringtrain/core'
import { addToTotals, jobSummary, metricsLine } from './aggregate.js'
import { broadcast, log } from './actions.js'
import { describeParticipant, describeWorker } from './assign-ranks.js'
import { startRound } from './start-round.js'
import { elasticJoin } from './elastic.js'
import { rankHintProblem, waitingWorker } from './rank-hints.js'
import { DEFAULT_DROP_LIMITS, drop, emptyGate, noDrops, quietLog, sendReject } from './drops.js'
import { decideFailed, decideInvalidMessage, decideOutputFailed, decideShutdownRequested, decideTick, decideWorkerExited, failJob } from './failures.js'
import { differingReplicas, implausibleEval } from './final-checks.js'
import { recordPosition } from './stall.js'
import type { Decision, DropLimits, Participant, RendezvousAction, RendezvousEvent, RendezvousState, WaitingWorker } from './types.js'

export function initialState(config: JobConfig, options: { exitGraceMs?: number; dropLimits?: Partial<DropLimits>; coordinatorHost?: string } = {}): RendezvousState {
  return {
    ...(options.coordinatorHost !== undefined ? { coordinatorHost: options.coordinatorHost } : {}),
    config,
    phase: 'waiting',
    round: 0,
    keepAliveIntervalMs: config.heartbeatIntervalMs,
    keepAliveMaxMissed: config.heartbeatMaxMissed,
    exitGraceMs: options.exitGraceMs ?? 1000,
    waitList: [],
    participants: {},
    barrierArrivals: {},
    stepReports: {},
    totals: { samples: 0, stepTimeMs: 0, stepsWritten: 0 },
    doneReports: {},
    failures: [],
    dropped: noDrops(),
    dropLimits: { ...DEFAULT_DROP_LIMITS, ...options.dropLimits },
    dropLog: emptyGate(),
    rejects: emptyGate(),
    stall: {},
    stallReports: [],
    rounds: [],
    lost: [],
    previousRanks: {},
  }
}

export function decide(state: RendezvousState, event: RendezvousEvent, now: number): Decision {
  const next = structuredClone(state)
  const actions: RendezvousAction[] = []
  switch (event.kind) {
    case 'join': decideJoin(next, event.from, event.message, now, actions); break
    case 'tick': decideTick(next, now, actions); break
    case 'workerExited': decideWorkerExited(next, event, now, actions); break
    case 'shutdownRequested': decideShutdownRequested(next, event, now, actions); break
    case 'stopRequested': decideStopRequested(next, event, now, actions); break
    case 'outputPart': case 'outputCommit': case 'outputRequest': decideOutput(next, event, now, actions); break
    case 'outputFailed': decideOutputFailed(next, event, now, actions); break
    case 'invalidMessage': decideInvalidMessage(next, event.from, event.error, now, actions); break
    case 'failed': decideFailed(next, event.from, event.message, now, actions); break
    case 'keepAlive': decideKeepAlive(next, event.from, now, actions); break
    case 'alive': decideAlive(next, event.from, event.message, now, actions); break
    default: decideFromParticipant(next, event, now, actions)
  }
  return { state: next, actions }
}

const typeNames = { heartbeat: 'Heartbeat', barrier: 'BarrierRequest', metrics: 'StepMetrics', done: 'WorkerDone' } as const

/**
 * Heartbeat, BarrierRequest, StepMetrics, WorkerDone: acted on only when they come from the
 * connection that joined as a rank of the current round, and name that rank (and round).
 * ROUTER identities are assigned by libzmq per connection, so nobody else can send as it.
 */
function decideFromParticipant(state: RendezvousState, event: Extract<RendezvousEvent, { kind: keyof typeof typeNames }>, now: number, actions: RendezvousAction[]): void {
  const { from, message } = event
  const type = typeNames[event.kind]
  const participant = state.participants[from]
  if (participant === undefined) {
    return drop(state, 'notParticipant', from, now, `Dropped a ${type} from worker ${from.slice(0, 8)}, which is not a participant of round ${state.round} (phase ${state.phase}).`, actions)
  }
  if (state.phase === 'regrouping' && message.rank === participant.rank) {
    // Between rounds its heartbeats still say it lives; the last step's metrics of the round still count.
    participant.lastHeartbeatAt = now
    if (event.kind === 'metrics' && event.message.round === state.round) decideMetrics(state, participant, event.message, actions)
    return
  }
  if (state.phase !== 'running') {
    return quietLog(state, 'afterEnd', from, now, `Dropped a ${type} from ${describeParticipant(participant)}: the job has ${state.phase}.`, actions)
  }
  const round = 'round' in message ? message.round : state.round
  if (message.rank !== participant.rank || round !== state.round) {
    return drop(state, 'wrongRankOrRound', from, now, `Dropped a ${type} from ${describeParticipant(participant)} that names rank ${message.rank}${'round' in message ? `, round ${message.round}` : ''}; it is rank ${participant.rank} of round ${state.round}.`, actions)
  }
  participant.lastHeartbeatAt = now
  if (event.kind === 'heartbeat') participant.step = event.message.step
  if (event.kind === 'barrier') decideBarrier(state, participant, event.message.name, actions)
  if (event.kind === 'metrics') decideMetrics(state, participant, event.message, actions)
  if (event.kind === 'done') decideDone(state, participant, event.message, now, actions)
}

function decideJoin(state: RendezvousState, from: string, join: Extract<RendezvousEvent, { kind: 'join' }>['message'], now: number, actions: RendezvousAction[]): void {
  const { config } = state
  const who = `pid ${join.pid} on ${join.host}`
  // The Rejects name what the sender sent, never this job's id, phase, round or size.
  if (join.version !== PROTOCOL_VERSION) {
    const error: WireError = { name: 'FrameError', code: 'E_PROTOCOL_VERSION', message: `The coordinator refused the join of ${who}: it speaks protocol version ${join.version}, the coordinator ${PROTOCOL_VERSION}. Run the same ringtrain version everywhere.`, context: { expected: PROTOCOL_VERSION, got: join.version } }
    return refuseJoin(state, from, 'invalid', error, now, actions)
  }
  if (join.jobId !== config.jobId) {
    const error: WireError = { name: 'FrameError', code: 'E_JOB_MISMATCH', message: `The coordinator refused the join of ${who}, which asked for job ${JSON.stringify(join.jobId)}: it does not serve that job. Check the --coordinator address and the job id.`, context: { got: join.jobId } }
    return refuseJoin(state, from, 'invalid', error, now, actions)
  }
  const unreachable = loopbackElsewhere(state, join)
  if (unreachable !== undefined) return refuseJoin(state, from, 'invalid', unreachable, now, actions)
  const misfit = rankHintProblem(state, join)
  if (misfit !== undefined) return refuseJoin(state, from, 'invalid', misfit, now, actions)
  if (state.phase !== 'waiting' && elasticJoin(state, from, join, now, actions)) return
  if (state.phase !== 'waiting') {
    const how = state.config.minWorkers === undefined ? 'Elastic joins are off (--min-workers).' : 'The elastic job is at --max-workers.'
    const error: WireError = { name: 'ConfigError', code: 'E_CONFIG', message: `The coordinator refused the join of ${who}: it admits no more workers. ${how}`, context: {} }
    return refuseJoin(state, from, 'lateJoin', error, now, actions)
  }
  const already = state.waitList.find((w) => w.identity === from)
  if (already !== undefined) {
    already.lastHeartbeatAt = now
    return quietLog(state, 'repeatJoin', from, now, `Ignored a second join from ${who}, which is already on the wait list.`, actions)
  }
  state.waitList.push(waitingWorker(from, join, now))
  const joined = state.waitList.length
  actions.push(log(`${who} joined job ${JSON.stringify(config.jobId)} and waits for the others (${joined} of ${config.worldSize} workers).`))
  actions.push({ kind: 'progress', event: { type: 'joined', host: join.host, pid: join.pid, joined, worldSize: config.worldSize } })
  if (joined === config.worldSize) startRound(state, now, actions, { why: 'the job started' })
}

/** A waiting worker answered the coordinator's KeepAlive (a participant's counts too): it is alive. */
function decideKeepAlive(state: RendezvousState, from: string, now: number, actions: RendezvousAction[]): void {
  const known = state.participants[from] ?? state.waitList.find((w) => w.identity === from)
  if (known !== undefined) {
    known.lastHeartbeatAt = now
    return
  }
  drop(state, 'notParticipant', from, now, `Dropped a KeepAlive from worker ${from.slice(0, 8)}, which neither waits nor takes part (phase ${state.phase}, round ${state.round}).`, actions)
}

/**
 * An Alive from a worker's liveness thread (a second connection of the same process): the
 * first connection that brings a participant's livenessToken is bound to it, and from then on
 * only that connection's Alive messages count as the participant's sign of life. An unknown
 * token, a bound token from another connection, or another token from a bound connection is
 * dropped and counted. The token itself is never logged. Alive never moves `step`: it says
 * the process lives, not that it makes progress (the collectives' step timeout times that).
 */
function decideAlive(state: RendezvousState, from: string, message: Extract<RendezvousEvent, { kind: 'alive' }>['message'], now: number, actions: RendezvousAction[]): void {
  // Waiting workers count too: the thread starts at the join, so that the synchronous set-up
  // right after the Assignment (backend, task, model) is covered from its first moment.
  const candidates: Array<WaitingWorker | Participant> = [...Object.values(state.participants), ...state.waitList]
  const bound = candidates.find((p) => p.livenessIdentity === from)
  if (bound !== undefined && bound.livenessToken !== message.token) {
    return drop(state, 'wrongRankOrRound', from, now, `Dropped an Alive from the liveness connection ${from.slice(0, 8)} of ${describeWorker(bound)}: it carries another token than its own.`, actions)
  }
  const owner = bound ?? candidates.find((p) => p.livenessToken !== undefined && p.livenessToken === message.token)
  if (owner === undefined) {
    return drop(state, 'notParticipant', from, now, `Dropped an Alive from worker ${from.slice(0, 8)}: its token belongs to no waiting worker or participant of round ${state.round} (phase ${state.phase}).`, actions)
  }
  if (owner.livenessIdentity !== undefined && owner.livenessIdentity !== from) {
    return drop(state, 'notParticipant', from, now, `Dropped an Alive from worker ${from.slice(0, 8)} with the token of ${describeWorker(owner)}, whose liveness connection is ${owner.livenessIdentity.slice(0, 8)}.`, actions)
  }
  if (state.phase !== 'running' && state.phase !== 'waiting' && state.phase !== 'regrouping') {
    return quietLog(state, 'afterEnd', from, now, `Dropped an Alive from the liveness connection of ${describeWorker(owner)}: the job has ${state.phase}.`, actions)
  }
  if (owner.livenessIdentity === undefined) {
    owner.livenessIdentity = from
    actions.push(log(`${describeWorker(owner)} reports its liveness from a thread of its own (connection ${from.slice(0, 8)}); long steps no longer silence it.`))
  }
  owner.lastHeartbeatAt = now
  if (state.phase === 'running' && state.participants[owner.identity] === owner) recordPosition(owner as Participant, message, now)
}

function decideBarrier(state: RendezvousState, participant: Participant, name: string, actions: RendezvousAction[]): void {
  const arrived = (state.barrierArrivals[name] ??= [])
  if (!arrived.includes(participant.rank)) arrived.push(participant.rank)
  if (arrived.length < state.config.worldSize) return
  delete state.barrierArrivals[name]
  actions.push(broadcast(state, controlMessage(MessageType.BarrierRelease, state.config.jobId, { round: state.round, name })))
}

function decideMetrics(state: RendezvousState, participant: Participant, metrics: Extract<RendezvousEvent, { kind: 'metrics' }>['message'], actions: RendezvousAction[]): void {
  const round = state.rounds.at(-1)
  if (round !== undefined && round.firstStep === undefined) round.firstStep = metrics.step
  participant.step = metrics.step + 1
  const reports = (state.stepReports[metrics.step] ??= {})
  reports[participant.rank] = metrics
  const byRank = Object.values(reports)
  if (byRank.length < state.config.worldSize) return
  delete state.stepReports[metrics.step]
  const line = metricsLine(byRank)
  addToTotals(state, byRank)
  const totalSteps = Math.max(0, ...byRank.map((r) => r.totalSteps ?? 0))
  const progress = { stepsDone: line.step + 1, totalSteps, epoch: line.epoch, epochs: Math.max(state.config.epochs ?? 0, ...byRank.map((r) => r.epochs ?? 0)), loss: line.loss, samplesPerSecond: line.samplesPerSecond }
  actions.push({ kind: 'writeMetricsLine', line }, { kind: 'progress', event: { type: 'metrics', line, progress } })
}

function decideDone(state: RendezvousState, participant: Participant, report: Extract<RendezvousEvent, { kind: 'done' }>['message'], now: number, actions: RendezvousAction[]): void {
  state.doneReports[participant.rank] = report
  const done = Object.keys(state.doneReports).length
  const { worldSize } = state.config
  actions.push(log(`${describeParticipant(participant)} is done after ${report.steps} steps (final loss ${report.finalLoss}, parameter hash ${report.parameterHash}); ${done} of ${worldSize} done.`))
  actions.push({ kind: 'progress', event: { type: 'workerDone', rank: participant.rank, done, worldSize } })
  if (done < worldSize) return
  const reports = Array.from({ length: worldSize }, (_, rank) => state.doneReports[rank]!)
  const evalError = implausibleEval(reports, (rank) => describeRank(state, rank))
  if (evalError !== undefined) {
    return failJob(state, { atMs: now, rank: evalError.context.rank as number, reason: evalError.message, error: evalError }, 1, actions)
  }
  const summary = jobSummary(state)
  // An elastic job below --min-workers: its last round checkpointed; it still failed.
  if (state.belowMinimum !== undefined) return failJob(state, { ...state.belowMinimum, atMs: now }, 1, actions, summary)
  const replicasError = differingReplicas(summary.parameterHashes)
  if (replicasError !== undefined) {
    // A failed job, but every rank finished: summary.json is still written, with every hash.
    return failJob(state, { atMs: now, reason: replicasError.message, error: replicasError }, 1, actions, summary)
  }
  state.phase = 'finished'
  actions.push(broadcast(state, controlMessage(MessageType.Shutdown, state.config.jobId, { reason: `job ${JSON.stringify(state.config.jobId)} finished` })))
  actions.push({ kind: 'progress', event: { type: 'done', summary } }, { kind: 'finish', summary })
}

/**
 * A graceful stop: while training, every participant hears a StopRequest and the job ends
 * with their WorkerDone reports as usual (see StopRequest); before the round started there
 * is nothing to save, so it stops at once.
 */
function decideStopRequested(state: RendezvousState, event: Extract<RendezvousEvent, { kind: 'stopRequested' }>, now: number, actions: RendezvousAction[]): void {
  if (state.phase === 'regrouping' && state.stopRequested === undefined) {
    // Between elastic rounds: the next round stops at its first step boundary, with a checkpoint.
    state.stopRequested = event.reason
    actions.push(log(`Stopping gracefully (${event.reason}): the next round stops at its first step boundary, rank 0 writes a checkpoint, then the job ends.`))
    return
  }
  if (state.phase !== 'running') return decideShutdownRequested(state, { kind: 'shutdownRequested', reason: event.reason }, now, actions)
  if (state.stopRequested !== undefined) return
  state.stopRequested = event.reason
  const to = Object.keys(state.participants)
  actions.push(log(`Stopping gracefully (${event.reason}): the ranks finish the step in flight, rank 0 writes a checkpoint, then the job ends.`))
  actions.push({ kind: 'broadcast', to, message: controlMessage(MessageType.StopRequest, state.config.jobId, { reason: event.reason }) })
}

/**
 * What rank 0 streams to this --out (a checkpoint, the final model): only from rank 0 of the
 * current round, while the job runs (or regroups, or finishes: the model comes last).
 */
function decideOutput(state: RendezvousState, event: Extract<RendezvousEvent, { kind: 'outputPart' | 'outputCommit' | 'outputRequest' }>, now: number, actions: RendezvousAction[]): void {
  const { from, message } = event
  const participant = state.participants[from]
  const type = event.kind === 'outputPart' ? 'OutputPart' : event.kind === 'outputCommit' ? 'OutputCommit' : 'OutputRequest'
  if (participant === undefined) return drop(state, 'notParticipant', from, now, `Dropped an ${type} from worker ${from.slice(0, 8)}, which is not a participant of round ${state.round} (phase ${state.phase}).`, actions)
  if (participant.rank !== 0 || message.rank !== 0 || message.round !== state.round) {
    return drop(state, 'wrongRankOrRound', from, now, `Dropped an ${type} from ${describeParticipant(participant)} naming rank ${message.rank}, round ${message.round}: only rank 0 of round ${state.round} writes the job's outputs.`, actions)
  }
  if (state.phase === 'failed') return
  participant.lastHeartbeatAt = now
  if (event.kind === 'outputPart') actions.push({ kind: 'writeOutputPart', message: event.message })
  else if (event.kind === 'outputCommit') actions.push({ kind: 'commitOutput', from, message: event.message })
  else if (event.message.path === state.config.resumeFrom) actions.push({ kind: 'sendCheckpoint', to: from, path: event.message.path, round: state.round })
  // Only the checkpoint the job resumes from is served: never another file of this machine.
  else drop(state, 'invalid', from, now, `Dropped an OutputRequest from ${describeParticipant(participant)} for ${JSON.stringify(event.message.path)}: only the checkpoint the job resumes from (${JSON.stringify(state.config.resumeFrom ?? 'none')}) is sent.`, actions)
}

const LOOPBACK = /^tcp:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\]):/

/**
 * A worker on another host than the coordinator that advertises a loopback data address
 * (it was started without --host): nobody else could reach it. Refused at its join, with
 * the fix, rather than after the step timeout.
 */
function loopbackElsewhere(state: RendezvousState, join: Extract<RendezvousEvent, { kind: 'join' }>['message']): WireError | undefined {
  const tcp = join.dataEndpoints.find((a) => a.startsWith('tcp://'))
  if (state.coordinatorHost === undefined || tcp === undefined || !LOOPBACK.test(tcp) || join.host === state.coordinatorHost) return undefined
  const message = `The coordinator refused the join of pid ${join.pid} on ${join.host}: it advertises ${tcp}, a loopback address, but runs on another host than the coordinator (${state.coordinatorHost}), so its peers could not reach it. Start it with --host ADDRESS, an address of ${join.host} that the other machines reach.`
  return { name: 'ConfigError', code: 'E_CONFIG', message, context: { expected: 'a data address other hosts reach (--host)', got: tcp } }
}

function describeRank(state: RendezvousState, rank: number): string {
  const participant = Object.values(state.participants).find((p) => p.rank === rank)
  return participant !== undefined ? describeParticipant(participant) : `rank ${rank}`
}

/** Counts a refused join, logs why (bounded) and tells the sender in a Reject (at most one per interval). */
function refuseJoin(state: RendezvousState, from: string, reason: 'invalid' | 'lateJoin', error: WireError, now: number, actions: RendezvousAction[]): void {
  const where = reason === 'lateJoin' ? ` (the job is ${state.phase}, round ${state.round}, with ${state.config.worldSize} workers)` : ''
  drop(state, reason, from, now, `${error.message}${where}`, actions)
  sendReject(state, from, error, now, actions)
}
