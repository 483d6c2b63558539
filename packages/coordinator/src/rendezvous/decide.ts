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
import { assignRanks, describeParticipant, localWorldSizes } from './assign-ranks.js'
import { decideFailed, decideInvalidMessage, decideShutdownRequested, decideTick, decideWorkerExited } from './failures.js'
import type { Decision, Participant, RendezvousAction, RendezvousEvent, RendezvousState } from './types.js'

export function initialState(config: JobConfig, options: { exitGraceMs?: number } = {}): RendezvousState {
  return {
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
    case 'invalidMessage': decideInvalidMessage(next, event.from, event.error, actions); break
    case 'failed': decideFailed(next, event.from, event.message, now, actions); break
    case 'keepAlive': decideKeepAlive(next, event.from, now, actions); break
    default: {
      const participant = next.participants[event.from]
      if (participant === undefined || next.phase !== 'running') {
        actions.push(log(`Dropped a ${event.kind} message from worker ${event.from.slice(0, 8)}, which is not a participant of a running round (phase ${next.phase}, round ${next.round}).`))
        break
      }
      participant.lastHeartbeatAt = now
      if (event.kind === 'heartbeat') participant.step = event.message.step
      if (event.kind === 'barrier') decideBarrier(next, participant, event.message.name, actions)
      if (event.kind === 'metrics') decideMetrics(next, participant, event.message, actions)
      if (event.kind === 'done') decideDone(next, participant, event.message, actions)
    }
  }
  return { state: next, actions }
}

function decideJoin(state: RendezvousState, from: string, join: Extract<RendezvousEvent, { kind: 'join' }>['message'], now: number, actions: RendezvousAction[]): void {
  const { config } = state
  const who = `pid ${join.pid} on ${join.host}`
  if (join.version !== PROTOCOL_VERSION) {
    return reject(state, from, 'FrameError', 'E_PROTOCOL_VERSION', `The coordinator of job ${JSON.stringify(config.jobId)} refused the join of ${who}: it speaks protocol version ${join.version}, the coordinator ${PROTOCOL_VERSION}. Run the same ringtrain version everywhere.`, actions, PROTOCOL_VERSION, join.version)
  }
  if (join.jobId !== config.jobId) {
    return reject(state, from, 'FrameError', 'E_JOB_MISMATCH', `The coordinator of job ${JSON.stringify(config.jobId)} refused the join of ${who}, which asked for job ${JSON.stringify(join.jobId)}. Check the --coordinator address and the job id.`, actions, config.jobId, join.jobId)
  }
  if (state.phase !== 'waiting') {
    return reject(state, from, 'ConfigError', 'E_CONFIG', `The coordinator of job ${JSON.stringify(config.jobId)} refused the join of ${who}: the job is ${state.phase} with ${config.worldSize} of ${config.worldSize} workers (round ${state.round}). Recovery and elastic joins are not enabled.`, actions, config.worldSize, config.worldSize + 1)
  }
  const already = state.waitList.find((w) => w.identity === from)
  if (already !== undefined) {
    already.lastHeartbeatAt = now
    actions.push(log(`Ignored a second join from ${who}, which is already on the wait list.`))
    return
  }
  state.waitList.push({ identity: from, host: join.host, pid: join.pid, localRank: join.localRank, dataEndpoints: join.dataEndpoints, backend: join.backend, joinedAtMs: now, lastHeartbeatAt: now })
  const joined = state.waitList.length
  actions.push(log(`${who} joined job ${JSON.stringify(config.jobId)} and waits for the others (${joined} of ${config.worldSize} workers).`))
  actions.push({ kind: 'progress', event: { type: 'joined', host: join.host, pid: join.pid, joined, worldSize: config.worldSize } })
  if (joined === config.worldSize) startRound(state, now, actions)
}

/** A waiting worker answered the coordinator's KeepAlive (a participant's counts too): it is alive. */
function decideKeepAlive(state: RendezvousState, from: string, now: number, actions: RendezvousAction[]): void {
  const known = state.participants[from] ?? state.waitList.find((w) => w.identity === from)
  if (known !== undefined) {
    known.lastHeartbeatAt = now
    return
  }
  actions.push(log(`Dropped a KeepAlive from worker ${from.slice(0, 8)}, which neither waits nor takes part (phase ${state.phase}, round ${state.round}).`))
}

/** The world is full: assign ranks, send each worker its Assignment, and start running. */
function startRound(state: RendezvousState, now: number, actions: RendezvousAction[]): void {
  const participants = assignRanks(state.waitList, now)
  const localSizes = localWorldSizes(participants)
  const peers = participants.map((p) => p.dataEndpoints)
  const hosts = participants.map((p) => p.host)
  state.waitList = []
  state.phase = 'running'
  for (const p of participants) {
    state.participants[p.identity] = p
    const assignment = controlMessage(MessageType.Assignment, state.config.jobId, {
      rank: p.rank, worldSize: participants.length, localRank: p.localRank, localWorldSize: localSizes[p.rank]!, round: state.round, peers, hosts, config: state.config,
    })
    actions.push({ kind: 'send', to: p.identity, message: assignment })
  }
  const distinctHosts = [...new Set(hosts)]
  actions.push(log(`Round ${state.round} starts with ${participants.length} workers on ${distinctHosts.length} host(s): ${participants.map(describeParticipant).join(', ')}.`))
  actions.push({ kind: 'progress', event: { type: 'started', round: state.round, worldSize: participants.length, hosts: distinctHosts } })
}

function decideBarrier(state: RendezvousState, participant: Participant, name: string, actions: RendezvousAction[]): void {
  const arrived = (state.barrierArrivals[name] ??= [])
  if (!arrived.includes(participant.rank)) arrived.push(participant.rank)
  if (arrived.length < state.config.worldSize) return
  delete state.barrierArrivals[name]
  actions.push(broadcast(state, controlMessage(MessageType.BarrierRelease, state.config.jobId, { round: state.round, name })))
}

function decideMetrics(state: RendezvousState, participant: Participant, metrics: Extract<RendezvousEvent, { kind: 'metrics' }>['message'], actions: RendezvousAction[]): void {
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

function decideDone(state: RendezvousState, participant: Participant, report: Extract<RendezvousEvent, { kind: 'done' }>['message'], actions: RendezvousAction[]): void {
  state.doneReports[participant.rank] = report
  const done = Object.keys(state.doneReports).length
  const { worldSize } = state.config
  actions.push(log(`${describeParticipant(participant)} is done after ${report.steps} steps (final loss ${report.finalLoss}, parameter hash ${report.parameterHash}); ${done} of ${worldSize} done.`))
  actions.push({ kind: 'progress', event: { type: 'workerDone', rank: participant.rank, done, worldSize } })
  if (done < worldSize) return
  const summary = jobSummary(state)
  state.phase = 'finished'
  actions.push(broadcast(state, controlMessage(MessageType.Shutdown, state.config.jobId, { reason: `job ${JSON.stringify(state.config.jobId)} finished` })))
  if (!summary.replicasIdentical) {
    actions.push(log(`The replicas differ at the end of the job: parameter hashes by rank are ${summary.parameterHashes.join(', ')}. The ranks did not apply identical updates.`))
  }
  actions.push({ kind: 'progress', event: { type: 'done', summary } }, { kind: 'finish', summary })
}

function reject(state: RendezvousState, to: string, name: string, code: WireError['code'], message: string, actions: RendezvousAction[], expected: unknown, got: unknown): void {
  actions.push(log(message))
  const error: WireError = { name, code, message, context: { expected, got } }
  actions.push({ kind: 'send', to, message: controlMessage(MessageType.Reject, state.config.jobId, { error }) })
}
