/** The coordinator's elastic rounds as pure decisions (rendezvous/elastic.ts). */
import { initialState, type RendezvousAction, type RendezvousEvent, type RendezvousState } from '@ringtrain/coordinator/unstable-internals-do-not-import'
import { MessageType, controlMessage, resolveJobConfig, type Assignment, type JoinRequest } from '@ringtrain/core'
import { describe, expect, test } from 'vitest'
import { runEvents } from '../helpers/decide-events.js'

const config = resolveJobConfig({ jobId: 'job-1', worldSize: 3, task: 'task.ts', outDir: '/out', heartbeatIntervalMs: 1000, heartbeatMaxMissed: 5, minWorkers: 2, maxWorkers: 4, elasticTimeoutMs: 30_000 })
const T0 = 1_000_000

function join(from: string, port = from): RendezvousEvent {
  const message: JoinRequest = controlMessage(MessageType.JoinRequest, 'job-1', { host: 'host-a', pid: Number.parseInt(from, 16), dataEndpoints: [`tcp://127.0.0.1:${port}`], backend: 'cpu' })
  return { kind: 'join', from, message }
}

/** Applies events in order at time `now` (T0 by default). */
const run = (state: RendezvousState, events: RendezvousEvent[], now = T0) => runEvents(state, events, now)

/** Rank 0's metrics of step 0: the round trained, so a later round takes a survivor's state. */
const trained: RendezvousEvent = { kind: 'metrics', from: 'a1', message: controlMessage(MessageType.StepMetrics, 'job-1', { rank: 0, round: 0, step: 0, epoch: 0, loss: 1, learningRate: 0.1, samples: 4, computeMs: 1, allReduceMs: 1, bytesSent: 1 }) }
const exited = (pid: number): RendezvousEvent => ({ kind: 'workerExited', pid, code: null, signal: 'SIGKILL' })
const tick: RendezvousEvent = { kind: 'tick' }
const assignments = (actions: RendezvousAction[]) => actions.flatMap((a) => (a.kind === 'send' && a.message.type === MessageType.Assignment ? [{ to: a.to, message: a.message as Assignment }] : []))
const regroups = (actions: RendezvousAction[]) => actions.flatMap((a) => (a.kind === 'broadcast' && a.message.type === MessageType.Regroup ? [{ to: a.to, message: a.message }] : []))

/** Three running workers a1, b2, c3 (ranks 0, 1, 2), and rank 2 killed (its exit grace passed). */
function lostRank2() {
  const started = run(initialState(config, { exitGraceMs: 100 }), [join('a1'), join('b2'), join('c3'), trained]).state
  const { state } = run(started, [exited(0xc3)], T0 + 200)
  return run(state, [tick], T0 + 400)
}

describe('elastic rounds', () => {
  test('a lost rank ends the round for the others (Regroup, at once), not the job', () => {
    const { state, actions } = lostRank2()
    expect(state.phase).toBe('regrouping')
    expect(regroups(actions)).toEqual([{ to: ['a1', 'b2'], message: expect.objectContaining({ round: 0, atStepBoundary: 0, reason: 'rank 2 (pid 195 on host-a) was lost' }) as unknown }])
    expect(actions.some((a) => a.kind === 'fail')).toBe(false)
    expect(state.lost).toMatchObject([{ rank: 2, round: 0, pid: 0xc3, reason: 'rank 2 (pid 195 on host-a) was killed by SIGKILL before reporting done' }])
  })

  test('once every survivor joined again, the next round starts with them, with new endpoints, and names the state holder', () => {
    const { state: regrouping } = lostRank2()
    const { state: half, actions: none } = run(regrouping, [join('b2', 'b2-new')], T0 + 450)
    expect(assignments(none)).toEqual([])
    expect(half.phase).toBe('regrouping')
    const { state, actions } = run(half, [join('a1', 'a1-new')], T0 + 500)
    expect(state.phase).toBe('running')
    expect(state.round).toBe(1)
    const sent = assignments(actions)
    expect(sent.map((s) => [s.to, s.message.rank, s.message.worldSize, s.message.round, s.message.stateFrom])).toEqual([['a1', 0, 2, 1, 0], ['b2', 1, 2, 1, 0]])
    expect(sent[0]!.message.peers).toEqual([['tcp://127.0.0.1:a1-new'], ['tcp://127.0.0.1:b2-new']])
    expect(sent[0]!.message.config.worldSize).toBe(2)
    expect(state.rounds.map((r) => [r.round, r.worldSize, r.why])).toEqual([[0, 3, 'the job started'], [1, 2, 'rank 2 (pid 195 on host-a) was lost']])
  })

  test('below --min-workers the job waits elasticTimeoutMs, lets the survivors checkpoint in a last round, then fails naming the lost ranks and the resume command', () => {
    const started = run(initialState(config, { exitGraceMs: 100 }), [join('a1'), join('b2'), join('c3'), trained]).state
    const { state: exiting } = run(started, [exited(0xc3), exited(0xb2)], T0 + 200)
    const { state: regrouping } = run(exiting, [tick], T0 + 400)
    const { state: waiting } = run(regrouping, [join('a1'), tick], T0 + 500)
    expect(waiting.phase).toBe('regrouping')
    const { state: still } = run(waiting, [tick], T0 + 400 + 30_000)
    expect(still.phase).toBe('regrouping')
    const { state: last, actions } = run(still, [tick], T0 + 400 + 30_001)
    expect(last.phase).toBe('running')
    expect(assignments(actions).map((s) => [s.to, s.message.round, s.message.worldSize, s.message.stateFrom])).toEqual([['a1', 1, 1, 0]])
    expect(actions.some((a) => a.kind === 'broadcast' && a.message.type === MessageType.StopRequest && a.to.includes('a1'))).toBe(true)
    const done = { kind: 'done' as const, from: 'a1', message: controlMessage(MessageType.WorkerDone, 'job-1', { rank: 0, steps: 9, parameterHash: 'h', finalLoss: 1, eval: {}, backend: 'cpu', stopReason: 'fewer', checkpointDir: '/out/checkpoints/step-0000009', checkpointStep: 9 }) }
    const { state, actions: end } = run(last, [done], T0 + 40_000)
    expect(state.phase).toBe('failed')
    const fail = end.find((a) => a.kind === 'fail')
    expect(fail?.kind === 'fail' && fail.reason).toBe('only 1 worker(s) left, fewer than --min-workers 2, for 30 s; stopping the job. Lost: rank 1 of round 0 (pid 178 on host-a), rank 2 of round 0 (pid 195 on host-a). Continue from the newest checkpoint with `ringtrain launch --resume /out …` (or coordinator --resume).')
    expect(fail?.kind === 'fail' && fail.summary?.checkpoint).toEqual({ step: 9, dir: '/out/checkpoints/step-0000009' })
  })

  test('with no survivor back after elasticTimeoutMs, the job fails at once', () => {
    const started = run(initialState(config, { exitGraceMs: 100 }), [join('a1'), join('b2'), join('c3'), trained]).state
    const { state: exiting } = run(started, [exited(0xc3), exited(0xb2), exited(0xa1)], T0 + 200)
    const { state: regrouping } = run(exiting, [tick], T0 + 400)
    const { state, actions } = run(regrouping, [tick], T0 + 400 + 30_001)
    expect(state.phase).toBe('failed')
    expect(actions.some((a) => a.kind === 'fail')).toBe(true)
  })

  test('a new worker waits, the ranks end the round at a step boundary, and the next round takes it in after the survivors', () => {
    const started = run(initialState(config), [join('a1'), join('b2'), join('c3'), trained]).state
    const { state: asked, actions } = run(started, [join('d4')], T0 + 100)
    expect(asked.phase).toBe('running')
    expect(regroups(actions)).toEqual([{ to: ['a1', 'b2', 'c3'], message: expect.objectContaining({ round: 0, atStepBoundary: 1 }) as unknown }])
    const { state, actions: next } = run(asked, [join('c3'), join('a1'), join('b2')], T0 + 200)
    expect(state.round).toBe(1)
    expect(assignments(next).map((s) => [s.to, s.message.rank, s.message.worldSize, s.message.stateFrom])).toEqual([['a1', 0, 4, 0], ['b2', 1, 4, 0], ['c3', 2, 4, 0], ['d4', 3, 4, 0]])
    expect(state.rounds.at(-1)!.why).toBe('pid 212 on host-a joined')
  })

  test('a worker beyond --max-workers is refused; without --min-workers a late join is refused as before', () => {
    const full = run(initialState({ ...config, worldSize: 4 }), [join('a1'), join('b2'), join('c3'), join('d4')]).state
    const { state, actions } = run(full, [join('e5')], T0 + 100)
    expect(state.waitList).toEqual([])
    expect(actions.find((a) => a.kind === 'send' && a.message.type === MessageType.Reject)).toBeDefined()
  })
})

describe('elastic stragglers', () => {
  test('a participant that does not join the next round within elasticTimeoutMs is left behind (and told), when enough others came back', () => {
    const four = resolveJobConfig({ ...config, worldSize: 4 })
    const started = run(initialState(four, { exitGraceMs: 100 }), [join('a1'), join('b2'), join('c3'), join('d4')]).state
    const { state: exiting } = run(started, [exited(0xd4)], T0 + 200)
    const { state: regrouping } = run(exiting, [tick, join('a1'), join('b2')], T0 + 400)
    expect(regrouping.phase).toBe('regrouping')
    // c3 lives (its heartbeats come) but does not come back.
    const alive = run(regrouping, [{ kind: 'heartbeat', from: 'c3', message: controlMessage(MessageType.Heartbeat, 'job-1', { rank: 2, round: 0, step: 5 }) }], T0 + 30_000).state
    const { state, actions } = run(alive, [tick], T0 + 400 + 30_001)
    expect(state.phase).toBe('running')
    expect(assignments(actions).map((s) => [s.to, s.message.worldSize])).toEqual([['a1', 2], ['b2', 2]])
    expect(actions.some((a) => a.kind === 'send' && a.to === 'c3' && a.message.type === MessageType.Abort)).toBe(true)
    expect(state.lost.map((l) => l.rank)).toEqual([3, 2])
  })
})

describe('elastic rounds before any training, and stops between rounds', () => {
  test('a round that broke before its first step shares no state: the next one starts as the first did (initial weights or the checkpoint resumed from)', () => {
    const started = run(initialState(config, { exitGraceMs: 100 }), [join('a1'), join('b2'), join('c3')]).state
    const { state: exiting } = run(started, [exited(0xc3)], T0 + 200)
    const { actions } = run(run(exiting, [tick], T0 + 400).state, [join('a1'), join('b2')], T0 + 500)
    expect(assignments(actions).map((s) => s.message.stateFrom)).toEqual([undefined, undefined])
  })

  test('a graceful stop asked for while regrouping is sent with the next round, which stops at its first step boundary', () => {
    const { state: regrouping } = lostRank2()
    const { state: asked } = run(regrouping, [{ kind: 'stopRequested', reason: 'the launcher got SIGINT' }], T0 + 450)
    expect(asked.phase).toBe('regrouping')
    const { actions } = run(asked, [join('a1'), join('b2')], T0 + 500)
    expect(actions.some((a) => a.kind === 'broadcast' && a.message.type === MessageType.StopRequest && a.to.length === 2)).toBe(true)
  })
})
