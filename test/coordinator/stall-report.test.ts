/**
 * The coordinator's stall report (stall.ts), decided purely: where every rank stands, from
 * its liveness thread's Alive messages, once a collective has waited for half the step
 * timeout, when a rank is declared lost, or when a rank reports a collective timeout.
 */
import { initialState, type RendezvousAction, type RendezvousEvent, type RendezvousState } from '@ringtrain/coordinator/unstable-internals-do-not-import'
import { MessageType, controlMessage, resolveJobConfig, type Alive, type MessageFields } from '@ringtrain/core'
import { describe, expect, test } from 'vitest'
import { runEvents } from '../helpers/decide-events.js'

// Heartbeat limit 1 s × 30 = 30 s, well past the step timeout's half (5 s): a stall is reported before anyone is lost.
const config = resolveJobConfig({ jobId: 'job-1', worldSize: 3, task: 'task.ts', outDir: 'out', epochs: 1, heartbeatIntervalMs: 1000, heartbeatMaxMissed: 30, stepTimeoutMs: 10_000 })
const T0 = 1_000_000
const ids = ['a1', 'b2', 'c3']

const run = runEvents

const join = (from: string, rank: number): RendezvousEvent => ({
  kind: 'join', from, message: controlMessage(MessageType.JoinRequest, 'job-1', { host: 'host-a', pid: 100 + rank, localRank: rank, dataEndpoints: [`tcp://127.0.0.1:${from}`], backend: 'cpu', livenessToken: `token-${rank}` }),
})
/** An Alive from rank `rank`'s liveness thread (connection `l-<id>`). */
const alive = (rank: number, fields: Omit<MessageFields<Alive>, 'token'>): RendezvousEvent => ({
  kind: 'alive', from: `l-${ids[rank]}`, message: controlMessage(MessageType.Alive, 'job-1', { token: `token-${rank}`, ...fields }),
})
const tick: RendezvousEvent = { kind: 'tick' }
const logs = (actions: RendezvousAction[]) => actions.flatMap((a) => (a.kind === 'log' ? [a.line] : []))
const reports = (actions: RendezvousAction[]) => logs(actions).filter((l) => l.startsWith('Stall report'))

/** Ranks 0 and 2 wait in allReduce op 7 at step 3 for their left peers; rank 1 computes step 3 (it has not arrived). */
function stalled(): RendezvousState {
  let { state } = run(initialState(config), ids.map((id, rank) => join(id, rank)), T0)
  ;({ state } = run(state, [
    alive(0, { step: 3, op: 7, collective: 'allReduce', phase: 'reduce-scatter, ring step 1 of 2, from rank 2', waitingFor: 2, inPhaseMs: 0 }),
    alive(1, { step: 3, op: 7, phase: 'between collectives', inPhaseMs: 0 }),
    alive(2, { step: 3, op: 7, collective: 'allReduce', phase: 'reduce-scatter, ring step 1 of 2, from rank 1', waitingFor: 1, inPhaseMs: 0 }),
  ], T0))
  return state
}

/** Ranks 0 and 2 say again, at T0 + t, that they still wait where they did. */
const stillWaiting = (t: number): RendezvousEvent[] => [
  alive(0, { step: 3, op: 7, collective: 'allReduce', phase: 'reduce-scatter, ring step 1 of 2, from rank 2', waitingFor: 2, inPhaseMs: t }),
  alive(2, { step: 3, op: 7, collective: 'allReduce', phase: 'reduce-scatter, ring step 1 of 2, from rank 1', waitingFor: 1, inPhaseMs: t }),
]

describe('the stall report', () => {
  test('comes once a collective has waited for half the step timeout, before it times out, naming for every rank its step, collective and phase, and the ranks that have not arrived', () => {
    let { state, actions } = run(stalled(), [tick], T0 + 4_999)
    expect(reports(actions), 'not before half the step timeout').toEqual([])
    // Ranks 0 and 2 still alive and where they were; rank 1 silent (stopped) since T0.
    ;({ state } = run(state, [
      alive(0, { step: 3, op: 7, collective: 'allReduce', phase: 'reduce-scatter, ring step 1 of 2, from rank 2', waitingFor: 2, inPhaseMs: 4_999 }),
      alive(2, { step: 3, op: 7, collective: 'allReduce', phase: 'reduce-scatter, ring step 1 of 2, from rank 1', waitingFor: 1, inPhaseMs: 4_999 }),
    ], T0 + 4_999))
    ;({ state, actions } = run(state, [tick], T0 + 5_000))
    expect(reports(actions)).toEqual([[
      'Stall report (rank 0 (pid 100 on host-a) has waited in allReduce op 7 at step 3 for 5.0 s; collectives time out after 10.0 s): ranks that have not arrived at step 3 allReduce op 7: [1]; ranks waited for: [1, 2]; ranks not heard for over 2.0 s: [1].',
      '  rank 0 (pid 100 on host-a): step 3, allReduce op 7, reduce-scatter, ring step 1 of 2, from rank 2, waiting for rank 2, for 5.0 s; last heard 0.0 s ago',
      '  rank 1 (pid 101 on host-a): step 3, between collectives (next op 7) for 5.0 s; last heard 5.0 s ago',
      '  rank 2 (pid 102 on host-a): step 3, allReduce op 7, reduce-scatter, ring step 1 of 2, from rank 1, waiting for rank 1, for 5.0 s; last heard 0.0 s ago',
    ].join('\n')])
    expect(state.phase, 'a report, not a failure').toBe('running')
    expect(state.stallReports).toHaveLength(1)
    expect(state.stallReports[0]).toMatchObject({
      atMs: T0 + 5_000, trigger: 'stalled', frontier: { step: 3, op: 7, collective: 'allReduce' }, notArrived: [1], waitedOn: [1, 2], silent: [1],
      ranks: [
        { rank: 0, step: 3, op: 7, collective: 'allReduce', waitingFor: 2, inPhaseMs: 5_000, lastHeardMsAgo: 1 },
        { rank: 1, step: 3, op: 7, phase: 'between collectives', inPhaseMs: 5_000, lastHeardMsAgo: 5_000 },
        { rank: 2, step: 3, op: 7, collective: 'allReduce', waitingFor: 1 },
      ],
    })
    const write = actions.find((a) => a.kind === 'writeStallReports')
    expect(write).toEqual({ kind: 'writeStallReports', reports: state.stallReports })
  })

  test('is not repeated on every tick: the same positions again only after another half step timeout, changed ones at once', () => {
    let { state, actions } = run(stalled(), [...stillWaiting(5_000), tick], T0 + 5_000)
    expect(reports(actions)).toHaveLength(1)
    ;({ state, actions } = run(state, [...stillWaiting(7_000), tick, tick], T0 + 7_000))
    ;({ state, actions } = run(state, [...stillWaiting(9_999), tick, tick], T0 + 9_999))
    expect(reports(actions)).toEqual([])
    ;({ state, actions } = run(state, [...stillWaiting(10_000), tick], T0 + 10_000))
    expect(reports(actions)).toHaveLength(1)
    // Rank 1 arrives and waits too: a new situation, reported at the next tick.
    ;({ state, actions } = run(state, [alive(1, { step: 3, op: 7, collective: 'allReduce', phase: 'reduce-scatter, ring step 1 of 2, from rank 0', waitingFor: 0, inPhaseMs: 0 }), tick], T0 + 10_001))
    expect(reports(actions)).toHaveLength(1)
    expect(reports(actions)[0]).toMatch(/ranks that have not arrived at step 3 allReduce op 7: \[\]; ranks waited for: \[0, 1, 2\]/)
    expect(state.stallReports.map((r) => r.atMs)).toEqual([T0 + 5_000, T0 + 10_000, T0 + 10_001])
  })

  test('a silent rank\'s last position does not make a stall by itself: the report comes once a rank still heard has waited half the step timeout, and names the silent one', () => {
    let { state } = run(initialState(config), ids.map((id, rank) => join(id, rank)), T0)
    // Rank 1's last word: in broadcastValue op 2; it moved on (or not) and went silent.
    ;({ state } = run(state, [alive(1, { step: 0, op: 2, collective: 'broadcastValue', phase: 'the length, from root 0 via rank 0', waitingFor: 0, inPhaseMs: 0 })], T0))
    const waiting = (t: number) => [
      alive(0, { step: 0, op: 3, collective: 'allReduce', phase: 'reduce-scatter, ring step 2 of 2, from rank 2', waitingFor: 2, inPhaseMs: t - 2_000 }),
      alive(2, { step: 0, op: 3, collective: 'allReduce', phase: 'reduce-scatter, ring step 1 of 2, from rank 1', waitingFor: 1, inPhaseMs: t - 2_000 }),
    ]
    let actions: RendezvousAction[]
    ;({ state, actions } = run(state, [...waiting(6_999), tick], T0 + 6_999))
    expect(reports(actions)).toEqual([])
    ;({ state, actions } = run(state, [...waiting(7_000), tick], T0 + 7_000))
    expect(reports(actions)[0]).toMatch(/^Stall report \(rank 0 \(pid 100 on host-a\) has waited in allReduce op 3 at step 0 for 5\.0 s; collectives time out after 10\.0 s\): ranks that have not arrived at step 0 allReduce op 3: \[1\]; ranks waited for: \[0, 1, 2\]; ranks not heard for over 2\.0 s: \[1\]\./)
    expect(reports(actions)[0]).toMatch(/\n {2}rank 1 \(pid 101 on host-a\): step 0, broadcastValue op 2, the length, from root 0 via rank 0, waiting for rank 0, for 7\.0 s; last heard 7\.0 s ago\n/)
  })

  test('nothing is reported while ranks only compute, however long, nor while collectives make progress', () => {
    let { state } = run(initialState(config), ids.map((id, rank) => join(id, rank)), T0)
    let all: RendezvousAction[] = []
    for (let t = 0; t <= 20_000; t += 1_000) {
      const phase = `all-gather, ring step ${(t / 1000) % 2 + 1} of 2, from rank 2`
      const { state: next, actions } = run(state, [
        alive(0, { step: 9, op: 20, phase: 'between collectives', inPhaseMs: t }),
        alive(1, { step: 9, op: 20, phase: 'between collectives', inPhaseMs: t }),
        alive(2, { step: 9, op: 20, collective: 'allReduce', phase, waitingFor: 1, inPhaseMs: 0 }),
        tick,
      ], T0 + t)
      state = next
      all = [...all, ...actions]
    }
    expect(reports(all)).toEqual([])
  })

  test('comes when a rank is declared lost, before the failure it causes, and when a rank reports a collective timeout', () => {
    const lost = run(stalled(), [alive(0, { step: 3, op: 7, collective: 'allReduce', phase: 'p', waitingFor: 2, inPhaseMs: 0 })], T0 + 29_000)
    // Too short a step timeout for the stall to come first: only the loss reports it.
    const short = { ...lost.state, config: { ...lost.state.config, stepTimeoutMs: 100_000 } }
    const { actions } = run(short, [tick], T0 + 31_000)
    const lines = logs(actions)
    const report = lines.findIndex((l) => l.startsWith('Stall report (rank 1 (pid 101 on host-a) is declared lost)'))
    expect(report, lines.join('\n')).toBeGreaterThanOrEqual(0)
    expect(lines.findIndex((l) => /rank 1 .* missed \d+ heartbeats/.test(l))).toBeGreaterThan(report)

    const timeout: RendezvousEvent = { kind: 'failed', from: 'a1', message: controlMessage(MessageType.WorkerFailed, 'job-1', { rank: 0, error: { name: 'CollectiveTimeoutError', code: 'E_TIMEOUT', message: 'rank 0 waited', context: {} } }) }
    const timedOut = run(stalled(), [timeout], T0 + 1_000)
    expect(reports(timedOut.actions)[0]).toMatch(/^Stall report \(rank 0 \(pid 100 on host-a\) timed out\): ranks that have not arrived at step 3 allReduce op 7: \[1\]/)
    expect(timedOut.state.stallReports[0]!.trigger).toBe('timeout')
    const other: RendezvousEvent = { kind: 'failed', from: 'a1', message: controlMessage(MessageType.WorkerFailed, 'job-1', { rank: 0, error: { name: 'TaskError', code: 'E_TASK', message: 'boom', context: {} } }) }
    expect(reports(run(stalled(), [other], T0 + 1_000).actions), 'another failure is no stall').toEqual([])
  })

  test('a rank whose position is not known yet is listed as such, and as not arrived', () => {
    let { state } = run(initialState(config), ids.map((id, rank) => join(id, rank)), T0)
    ;({ state } = run(state, [
      alive(0, { step: 0, op: 2, collective: 'broadcast', phase: 'the 1 segment(s) from root 0 via rank 2', waitingFor: 2, inPhaseMs: 0 }),
      alive(1, { step: 0 }),
    ], T0))
    const { actions } = run(state, [alive(0, { step: 0, op: 2, collective: 'broadcast', phase: 'the 1 segment(s) from root 0 via rank 2', waitingFor: 2, inPhaseMs: 5_000 }), tick], T0 + 5_000)
    const [report] = reports(actions)
    expect(report).toMatch(/ranks that have not arrived at step 0 broadcast op 2: \[1, 2\]/)
    expect(report).toMatch(/rank 1 \(pid 101 on host-a\): step 0, before its first collective, for 5\.0 s/)
    expect(report).toMatch(/rank 2 \(pid 102 on host-a\): position unknown/)
  })

  test('summary.json of a job that finished after a stall lists the reports', () => {
    let { state, actions } = run(stalled(), [...stillWaiting(5_000), tick], T0 + 5_000)
    for (const [rank, id] of ids.entries()) {
      ;({ state, actions } = run(state, [{ kind: 'done', from: id!, message: controlMessage(MessageType.WorkerDone, 'job-1', { rank, steps: 4, parameterHash: 'h', finalLoss: 1, eval: {}, backend: 'cpu' }) }], T0 + 6_000))
    }
    expect(state.phase).toBe('finished')
    const finish = actions.find((a) => a.kind === 'finish')
    expect(finish?.kind === 'finish' && finish.summary.stallReports?.map((r) => r.notArrived)).toEqual([[1]])
  })
})
