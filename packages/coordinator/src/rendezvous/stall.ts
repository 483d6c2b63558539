/**
 * The stall report (Horovod's stall inspector, on by default). Every participant's liveness
 * thread says in each Alive where its rank stands in the round's collectives (Note [Where a
 * rank stands] in @ringtrain/core); the coordinator keeps the latest per rank. When a rank
 * has waited in one phase of a collective for half the step timeout, so before any
 * collective times out, or when a rank is declared lost or reports a collective timeout, the
 * coordinator logs ONE report: for every rank its step, collective, op, phase, the rank it
 * waits for, for how long, and when it was last heard; and which ranks have not arrived at
 * the furthest collective any rank entered. The same situation is reported again only after
 * another half step timeout; a changed one at once. Pure, like decide.ts.
 */
import type { Alive } from '@ringtrain/core'
import { log } from './actions.js'
import { describeParticipant } from './assign-ranks.js'
import type { Participant, RankPosition, RendezvousAction, RendezvousState, StallReport } from './types.js'

/** How many reports the state (and stall-reports.json, summary.json) keeps: the latest. */
export const MAX_STALL_REPORTS = 5

/** How long a rank may wait in one phase of a collective before the job is reported stalled: half the step timeout. */
export function stallAfterMs(state: RendezvousState): number {
  return state.config.stepTimeoutMs / 2
}

/** A rank not heard for longer (two heartbeat intervals) is silent: stopped, hung or cut off, or about to be declared lost. */
function silentAfterMs(state: RendezvousState): number {
  return 2 * state.keepAliveIntervalMs
}

/** Keeps what a participant's Alive says about where it stands; the phase keeps its start while it stays the same. */
export function recordPosition(participant: Participant, message: Alive, now: number): void {
  const { step, op, collective, phase, waitingFor, inPhaseMs } = message
  const next: RankPosition = {
    step,
    ...(op !== undefined ? { op } : {}),
    ...(collective !== undefined ? { collective } : {}),
    ...(phase !== undefined ? { phase } : {}),
    ...(waitingFor !== undefined ? { waitingFor } : {}),
    sinceMs: now - (inPhaseMs ?? 0),
  }
  const previous = participant.position
  if (previous !== undefined && positionKey(previous) === positionKey(next)) return
  participant.position = next
}

/** On every tick of a running job: a report when some rank has waited in one phase of a collective for stallAfterMs. */
export function decideStall(state: RendezvousState, now: number, actions: RendezvousAction[]): void {
  const limit = stallAfterMs(state)
  let longest: Participant | undefined
  for (const p of live(state)) {
    // A silent rank's position is only its last word (it may have moved on before it stopped): only ranks heard lately count.
    if (now - p.lastHeartbeatAt > silentAfterMs(state)) continue
    if (p.position?.collective === undefined || now - p.position.sinceMs < limit) continue
    if (longest === undefined || p.position.sinceMs < longest.position!.sinceMs) longest = p
  }
  if (longest === undefined) return
  const at = longest.position!
  const why = `${describeParticipant(longest)} has waited in ${at.collective} op ${at.op} at step ${at.step} for ${seconds(now - at.sinceMs)} s; collectives time out after ${seconds(state.config.stepTimeoutMs)} s`
  reportStall(state, 'stalled', why, now, actions)
}

/**
 * Logs a stall report (and has stall-reports.json written) saying `why`, unless the last one
 * described the same positions less than stallAfterMs ago.
 */
export function reportStall(state: RendezvousState, trigger: StallReport['trigger'], why: string, now: number, actions: RendezvousAction[]): void {
  const ranks = live(state)
  // Workers without a liveness thread (or before its first Alive) say nothing about where they stand.
  if (!ranks.some((p) => p.position !== undefined)) return
  const signature = ranks.map((p) => `${p.rank}:${p.position !== undefined ? positionKey(p.position) : '?'}`).join(' ')
  const { lastReportAtMs, lastSignature } = state.stall
  if (signature === lastSignature && lastReportAtMs !== undefined && now - lastReportAtMs < stallAfterMs(state)) return
  state.stall = { lastReportAtMs: now, lastSignature: signature }
  const report = buildReport(state, ranks, trigger, why, now)
  state.stallReports = [...state.stallReports, report].slice(-MAX_STALL_REPORTS)
  actions.push(log(report.text), { kind: 'writeStallReports', reports: state.stallReports })
}

function buildReport(state: RendezvousState, ranks: Participant[], trigger: StallReport['trigger'], why: string, now: number): StallReport {
  const entered = (p: Participant) => {
    const at = p.position
    if (at?.op === undefined) return -1
    return at.collective !== undefined ? at.op : at.op - 1
  }
  const furthest = Math.max(...ranks.map(entered))
  let frontier: StallReport['frontier']
  if (furthest >= 0) {
    const inIt = ranks.find((p) => p.position?.collective !== undefined && p.position.op === furthest)
    const past = ranks.find((p) => entered(p) === furthest)!
    frontier = inIt !== undefined
      ? { step: inIt.position!.step, op: furthest, collective: inIt.position!.collective! }
      : { step: past.position!.step, op: furthest }
  }
  const notArrived = frontier === undefined ? [] : ranks.filter((p) => entered(p) < furthest).map((p) => p.rank)
  const waitedOn = [...new Set(ranks.flatMap((p) => (p.position?.collective !== undefined && p.position.waitingFor !== undefined ? [p.position.waitingFor] : [])))].sort((a, b) => a - b)
  const silentMs = silentAfterMs(state)
  const silent = ranks.filter((p) => now - p.lastHeartbeatAt > silentMs).map((p) => p.rank)
  const rows: StallReport['ranks'] = ranks.map((p) => {
    const at = p.position
    return {
      rank: p.rank,
      ...(at !== undefined ? { step: at.step, inPhaseMs: now - at.sinceMs } : {}),
      ...(at?.op !== undefined ? { op: at.op } : {}),
      ...(at?.collective !== undefined ? { collective: at.collective } : {}),
      ...(at?.phase !== undefined ? { phase: at.phase } : {}),
      ...(at?.waitingFor !== undefined ? { waitingFor: at.waitingFor } : {}),
      lastHeardMsAgo: now - p.lastHeartbeatAt,
    }
  })
  const where = frontier === undefined ? 'no collective yet' : `step ${frontier.step} ${frontier.collective ?? 'collective'} op ${frontier.op}`
  const summary = [
    `ranks that have not arrived at ${where}: [${notArrived.join(', ')}]`,
    `ranks waited for: [${waitedOn.join(', ')}]`,
    `ranks not heard for over ${seconds(silentMs)} s: [${silent.join(', ')}]`,
  ].join('; ')
  const lines = ranks.map((p) => `  ${describeParticipant(p)}: ${describePosition(p.position, now)}; last heard ${seconds(now - p.lastHeartbeatAt)} s ago`)
  const text = [`Stall report (${why}): ${summary}.`, ...lines].join('\n')
  return { atMs: now, trigger, ...(frontier !== undefined ? { frontier } : {}), notArrived, waitedOn, silent, ranks: rows, text }
}

/** `step 12, allReduce op 25, reduce-scatter, ring step 1 of 2, from rank 1, for 4.2 s` or `step 12, between collectives (next op 25) for 4.2 s`. */
function describePosition(at: RankPosition | undefined, now: number): string {
  if (at === undefined) return 'position unknown (no Alive with a position yet)'
  const forS = `for ${seconds(now - at.sinceMs)} s`
  if (at.op === undefined) return `step ${at.step}, before its first collective, ${forS}`
  if (at.collective === undefined) return `step ${at.step}, ${at.phase ?? 'between collectives'} (next op ${at.op}) ${forS}`
  const waits = at.waitingFor !== undefined ? `, waiting for rank ${at.waitingFor}` : ''
  return `step ${at.step}, ${at.collective} op ${at.op}, ${at.phase ?? 'in progress'}${waits}, ${forS}`
}

/** Participants that have not reported done, by rank. */
function live(state: RendezvousState): Participant[] {
  return Object.values(state.participants).filter((p) => state.doneReports[p.rank] === undefined).sort((a, b) => a.rank - b.rank)
}

function positionKey(at: RankPosition): string {
  return `${at.step}/${at.op ?? ''}/${at.collective ?? ''}/${at.phase ?? ''}/${at.waitingFor ?? ''}`
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1)
}
