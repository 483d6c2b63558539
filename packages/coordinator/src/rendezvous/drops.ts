/**
 * What the coordinator does with a message it will not act on: it counts it (summary.json's
 * `dropped`), logs it at most once per (reason, sender) per interval, with the number held
 * back once that interval is over, and answers an outsider with a Reject at most once per
 * interval. Each gate also has a budget of keys per interval over all senders, so a flood
 * from one sender or from ten thousand costs a bounded number of log lines and Rejects, and
 * a bounded amount of state (a key is only tracked while it is in its interval, and at most
 * `budget` keys start one per interval). Pure: every function takes `now`.
 *
 * A Reject names neither the coordinator's job nor its phase, round or world size: whoever
 * reached the port learns nothing it did not send itself.
 */
import { MessageType, controlMessage, type Reject, type WireError } from '@ringtrain/core'
import { log } from './actions.js'
import type { DropLimits, DropReason, DroppedCounts, RateGate, RendezvousAction, RendezvousState } from './types.js'

export const DEFAULT_DROP_LIMITS: DropLimits = { intervalMs: 10_000, linesPerInterval: 20, rejectsPerInterval: 100 }

export function noDrops(): DroppedCounts {
  return { notParticipant: 0, wrongRankOrRound: 0, invalid: 0, lateJoin: 0 }
}

export function emptyGate(): RateGate {
  return { keys: {}, passedInWindow: 0, overBudget: {} }
}

/** Why a line was logged, in its held-back summaries. Reasons beyond DropReason are logged but not counted. */
const REASON_TEXT: Record<string, string> = {
  notParticipant: 'not a participant',
  wrongRankOrRound: 'another rank or round',
  invalid: 'invalid',
  lateJoin: 'join after the world was full',
  afterEnd: 'after the job ended',
  repeatJoin: 'repeated join',
}

/** Counts a message the coordinator will not act on, and logs `line` as `quietLog` does. */
export function drop(state: RendezvousState, reason: DropReason, from: string, now: number, line: string, actions: RendezvousAction[]): void {
  state.dropped[reason] += 1
  quietLog(state, reason, from, now, line, actions)
}

/**
 * Logs `line` unless a line for this (reason, sender) went out in the last interval or the
 * interval's budget of lines is spent; either way the message is counted for a later line.
 */
export function quietLog(state: RendezvousState, reason: string, from: string, now: number, line: string, actions: RendezvousAction[]): void {
  flushDropLog(state, now, actions)
  const { intervalMs, linesPerInterval } = state.dropLimits
  const gate = state.dropLog
  const passed = pass(gate, `${reason} ${from}`, now, intervalMs, linesPerInterval)
  if (passed === 'pass') {
    actions.push(log(line))
  } else if (passed === 'overBudget') {
    gate.overBudget[reason] = (gate.overBudget[reason] ?? 0) + 1
    gate.overBudgetSinceMs ??= now
  }
}

/**
 * Logs how many messages were held back in intervals that are over, and forgets their keys.
 * Runs on every tick and before every line, so counts come out within an interval.
 */
export function flushDropLog(state: RendezvousState, now: number, actions: RendezvousAction[]): void {
  const { intervalMs, linesPerInterval } = state.dropLimits
  const gate = state.dropLog
  for (const [key, entry] of expire(gate, now, intervalMs)) {
    if (entry.heldBack === 0) continue
    const space = key.indexOf(' ')
    const reason = key.slice(0, space)
    const from = key.slice(space + 1)
    actions.push(log(`… and ${count(entry.heldBack)} more like it from worker ${from.slice(0, 8)} in the last ${seconds(now - entry.passedAtMs)} s (${REASON_TEXT[reason] ?? reason}).`))
  }
  // Held back over budget: counted in the interval that spent the budget, logged once it is over.
  const start = gate.windowStartMs
  if (gate.overBudgetSinceMs === undefined || start === undefined || now - start < intervalMs) return
  const byReason = Object.entries(gate.overBudget)
  const total = byReason.reduce((sum, [, n]) => sum + n, 0)
  actions.push(log(`Did not log ${count(total)} more dropped messages in the last ${seconds(now - start)} s (at most ${linesPerInterval} lines per ${seconds(intervalMs)} s): ${byReason.map(([reason, n]) => `${count(n)} ${REASON_TEXT[reason] ?? reason}`).join(', ')}.`))
  gate.overBudget = {}
  delete gate.overBudgetSinceMs
}

/** Sends `error` to `to` in a Reject, at most once per sender per interval and within the interval's budget of Rejects. */
export function sendReject(state: RendezvousState, to: string, error: WireError, now: number, actions: RendezvousAction[]): void {
  const { intervalMs, rejectsPerInterval } = state.dropLimits
  expire(state.rejects, now, intervalMs)
  if (pass(state.rejects, to, now, intervalMs, rejectsPerInterval) !== 'pass') return
  actions.push({ kind: 'send', to, message: rejectMessage(state, error) })
}

/**
 * A Reject whose envelope carries no job id (''), and whose error names no job but the one
 * the sender asked for: a worker reads a Reject whatever its job id (protocol/validate.ts).
 * An error that still quotes the coordinator's job id (one this file does not know of) is
 * replaced by its code.
 */
export function rejectMessage(state: RendezvousState, error: WireError): Reject {
  const text = JSON.stringify(error)
  const quoted = JSON.stringify(state.config.jobId)
  const namesJob = state.config.jobId !== '' && (text.includes(quoted) || text.includes(JSON.stringify(quoted).slice(1, -1)))
  const safe = namesJob ? { name: error.name, code: error.code, message: `The coordinator refused a message [${error.code}].`, context: {} } : error
  return controlMessage(MessageType.Reject, '', { error: safe })
}

/**
 * An error refused at the edge as its sender may read it. The edge's E_JOB_MISMATCH says
 * which job this is (protocol/validate.ts); the sender hears only that the job it asked
 * for is not served here. Other edge errors describe what the sender sent.
 */
export function edgeErrorForSender(error: WireError): WireError {
  if (error.code !== 'E_JOB_MISMATCH') return error
  const asked = error.context.got
  const what = typeof asked === 'string' ? `a message for job ${JSON.stringify(asked)}` : 'a message for another job'
  return { name: error.name, code: error.code, message: `The coordinator refused ${what}: it does not serve that job. Check the --coordinator address and the job id.`, context: { got: asked } }
}

/**
 * Lets `key` pass once per interval, and at most `budget` keys per interval in all. A key
 * that passed less than an interval ago is held back (and counted on its entry); a key that
 * finds the budget spent is not tracked at all, so the state never grows past the budget.
 */
function pass(gate: RateGate, key: string, now: number, intervalMs: number, budget: number): 'pass' | 'heldBack' | 'overBudget' {
  const entry = gate.keys[key]
  if (entry !== undefined && now - entry.passedAtMs < intervalMs) {
    entry.heldBack += 1
    return 'heldBack'
  }
  if (gate.windowStartMs === undefined || now - gate.windowStartMs >= intervalMs) {
    gate.windowStartMs = now
    gate.passedInWindow = 0
  }
  if (gate.passedInWindow >= budget) return 'overBudget'
  gate.passedInWindow += 1
  delete gate.keys[key]
  gate.keys[key] = { passedAtMs: now, heldBack: 0 }
  return 'pass'
}

/** Removes and returns the keys whose interval is over (oldest first). */
function expire(gate: RateGate, now: number, intervalMs: number): Array<[string, RateGate['keys'][string]]> {
  const expired: Array<[string, RateGate['keys'][string]]> = []
  for (const [key, entry] of Object.entries(gate.keys)) {
    if (now - entry.passedAtMs < intervalMs) continue
    expired.push([key, entry])
    delete gate.keys[key]
  }
  return expired
}

function count(n: number): string {
  return n.toLocaleString('en-US')
}

function seconds(ms: number): string {
  return Number.isInteger(ms / 1000) ? String(ms / 1000) : (ms / 1000).toFixed(1)
}
