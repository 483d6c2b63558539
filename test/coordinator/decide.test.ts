import { decide, initialState, type RendezvousAction, type RendezvousEvent, type RendezvousState } from '@ringtrain/coordinator/unstable-internals-do-not-import'
import { MessageType, PROTOCOL_VERSION, controlMessage, resolveJobConfig, type Assignment, type JoinRequest } from '@ringtrain/core'
import { describe, expect, test } from 'vitest'

const config = resolveJobConfig({ jobId: 'job-1', worldSize: 3, task: 'task.ts', outDir: 'out', epochs: 1, heartbeatIntervalMs: 1000, heartbeatMaxMissed: 5 })
const T0 = 1_000_000

function join(from: string, fields: Partial<JoinRequest> = {}): RendezvousEvent {
  const message = { ...controlMessage(MessageType.JoinRequest, 'job-1', { host: 'host-a', pid: Number.parseInt(from, 16), dataEndpoints: [`tcp://127.0.0.1:${from}`], backend: 'cpu' }), ...fields }
  return { kind: 'join', from, message }
}

/** Applies events in order at time `now`; returns the last state and every action. */
function run(state: RendezvousState, events: RendezvousEvent[], now = T0): { state: RendezvousState; actions: RendezvousAction[] } {
  const actions: RendezvousAction[] = []
  for (const event of events) {
    const decision = decide(state, event, now)
    state = decision.state
    actions.push(...decision.actions)
  }
  return { state, actions }
}

const running = () => run(initialState(config), [join('a1'), join('b2'), join('c3')]).state
const sends = (actions: RendezvousAction[]) => actions.filter((a) => a.kind === 'send')
const only = <K extends RendezvousAction['kind']>(actions: RendezvousAction[], kind: K) => actions.filter((a): a is Extract<RendezvousAction, { kind: K }> => a.kind === kind)
const keepAlive = (from: string): RendezvousEvent => ({ kind: 'keepAlive', from, message: controlMessage(MessageType.KeepAlive, 'job-1', { intervalMs: 1000, maxMissed: 5 }) })
const heartbeat = (from: string, rank: number, step = 0): RendezvousEvent => ({ kind: 'heartbeat', from, message: controlMessage(MessageType.Heartbeat, 'job-1', { rank, round: 0, step }) })
const metrics = (from: string, rank: number, step: number, loss: number, computeMs: number) => ({
  kind: 'metrics' as const, from, message: controlMessage(MessageType.StepMetrics, 'job-1', { rank, round: 0, step, epoch: 0, loss, learningRate: 0.01, samples: 32, computeMs, allReduceMs: 10, bytesSent: 1000 * (rank + 1) }),
})
const done = (from: string, rank: number, parameterHash = 'h', accuracy = { sum: 9, count: 10 }) => ({
  kind: 'done' as const, from, message: controlMessage(MessageType.WorkerDone, 'job-1', { rank, steps: 4, parameterHash, finalLoss: rank, eval: { accuracy }, backend: 'cpu' }),
})

describe('joining', () => {
  test('fails the job when the world does not fill within joinTimeoutMs, naming who joined', () => {
    const tick = { kind: 'tick' } as RendezvousEvent
    let { state } = run(initialState(config), [tick, join('a1')], T0)
    ;({ state } = run(state, [keepAlive('a1')], T0 + config.joinTimeoutMs - 1000))
    ;({ state } = run(state, [tick], T0 + config.joinTimeoutMs))
    expect(state.phase, 'exactly at the deadline it still waits').toBe('waiting')
    const { state: failed, actions } = run(state, [tick], T0 + config.joinTimeoutMs + 1)
    expect(failed.phase).toBe('failed')
    const fail = only(actions, 'fail')[0]!
    expect(fail.exitCode).toBe(1)
    expect(fail.reason).toBe('only 1 of 3 workers joined job "job-1" within 300 s (joined: pid 161 on host-a); stopping the job. Start the missing workers with `ringtrain worker --coordinator …`, or ask for fewer with -n.')
  })

  test('puts a joining worker on the wait list until the world is full', () => {
    const { state, actions } = run(initialState(config), [join('a1'), join('b2')])
    expect(state.phase).toBe('waiting')
    expect(state.waitList.map((w) => w.identity)).toEqual(['a1', 'b2'])
    expect(sends(actions)).toEqual([])
  })

  test('assigns ranks and sends every worker its Assignment when worldSize workers joined', () => {
    const { state, actions } = run(initialState(config), [join('a1'), join('b2'), join('c3')])
    expect(state.phase).toBe('running')
    expect(state.waitList).toEqual([])
    const assignments = sends(actions).map((a) => a.kind === 'send' && (a.message as Assignment))
    expect(assignments.map((a) => a && a.rank)).toEqual([0, 1, 2])
    expect(assignments[1]).toMatchObject({ type: MessageType.Assignment, version: PROTOCOL_VERSION, jobId: 'job-1', worldSize: 3, round: 0, peers: [['tcp://127.0.0.1:a1'], ['tcp://127.0.0.1:b2'], ['tcp://127.0.0.1:c3']], config })
  })

  test('groups ranks by host, then by localRank, so local ranks are contiguous', () => {
    const events = [join('a1', { host: 'x' }), join('b2', { host: 'y', localRank: 1 }), join('c3', { host: 'x' }), join('d4', { host: 'y', localRank: 0 })]
    const { state } = run(initialState({ ...config, worldSize: 4 }), events)
    const byRank = Object.values(state.participants).sort((p, q) => p.rank - q.rank).map((p) => [p.identity, p.host, p.localRank])
    expect(byRank).toEqual([['a1', 'x', 0], ['c3', 'x', 1], ['d4', 'y', 0], ['b2', 'y', 1]])
  })

  test('rejects a join of another protocol version or another job, with the typed error', () => {
    const { state, actions } = run(initialState(config), [join('a1', { version: PROTOCOL_VERSION + 1 }), join('b2', { jobId: 'other' })])
    expect(state.waitList).toEqual([])
    const codes = sends(actions).map((a) => a.kind === 'send' && a.message.type === MessageType.Reject && a.message.error.code)
    expect(codes).toEqual(['E_PROTOCOL_VERSION', 'E_JOB_MISMATCH'])
  })

  test('rejects a join when the job is already running (world full)', () => {
    const { actions } = run(running(), [join('d4')])
    const [reject] = sends(actions)
    expect(reject).toMatchObject({ to: 'd4', message: { type: MessageType.Reject, error: { code: 'E_CONFIG' } } })
    expect(reject!.kind === 'send' && reject!.message.type === MessageType.Reject && reject!.message.error.message).toMatch(/job is running with 3 of 3 workers/)
  })

  test('answers every message rejected at the edge from a worker that is not a participant with a Reject carrying the error', () => {
    const foreign = { name: 'FrameError', code: 'E_JOB_MISMATCH' as const, message: 'other job', context: {} }
    const badJoin = { ...foreign, code: 'E_BAD_FRAME' as const, message: 'the coordinator got a JoinRequest from worker ee whose pid is wrong: expected a non-negative integer, got -1. Dropped it.' }
    const { actions } = run(initialState(config), [{ kind: 'invalidMessage', from: 'ff', error: foreign }, { kind: 'invalidMessage', from: 'ee', error: badJoin }])
    expect(sends(actions)).toEqual([
      { kind: 'send', to: 'ff', message: controlMessage(MessageType.Reject, 'job-1', { error: foreign }) },
      { kind: 'send', to: 'ee', message: controlMessage(MessageType.Reject, 'job-1', { error: badJoin }) },
    ])
    expect(only(actions, 'log').map((a) => a.line)).toEqual(['other job', badJoin.message])
  })

  test('only logs a message rejected at the edge from a participant', () => {
    const garbage = { name: 'FrameError', code: 'E_BAD_FRAME' as const, message: 'not msgpack', context: {} }
    const { state, actions } = run(running(), [{ kind: 'invalidMessage', from: 'b2', error: garbage }])
    expect(sends(actions)).toEqual([])
    expect(state.participants.b2).toBeDefined()
  })

  test('removes a waiting worker whose message was refused at the edge, and tells it why', () => {
    const garbage = { name: 'FrameError', code: 'E_BAD_FRAME' as const, message: 'bad keep-alive', context: {} }
    const { state, actions } = run(initialState(config), [join('a1'), join('b2'), { kind: 'invalidMessage', from: 'a1', error: garbage }])
    expect(state.waitList.map((w) => w.identity)).toEqual(['b2'])
    expect(sends(actions)).toEqual([{ kind: 'send', to: 'a1', message: controlMessage(MessageType.Reject, 'job-1', { error: garbage }) }])
    expect(only(actions, 'log').at(-1)!.line).toBe('Removed pid 161 on host-a from the wait list: its message was refused (1 of 3 workers wait).')
  })

  test('removes a waiting worker that answered no keep-alive for interval × maxMissed, logs it and tells it why', () => {
    const waiting = run(initialState(config), [join('a1'), join('b2')], T0).state
    const answered = run(waiting, [keepAlive('b2')], T0 + 4000).state
    const { state, actions } = run(answered, [{ kind: 'tick' }], T0 + 5001)
    expect(state.waitList.map((w) => w.identity)).toEqual(['b2'])
    expect(only(actions, 'log').map((a) => a.line)).toEqual(['pid 161 on host-a answered none of the last 5 keep-alives (silent for 5.0 s) while it waited; removed it from the wait list (1 of 3 workers wait).'])
    const [reject] = sends(actions)
    expect(reject).toMatchObject({ to: 'a1', message: { type: MessageType.Reject, error: { name: 'PeerLostError', code: 'E_PEER_LOST' } } })
    expect(reject!.kind === 'send' && reject!.message.type === MessageType.Reject && reject!.message.error.message).toBe('The coordinator of job "job-1" removed pid 161 on host-a from its wait list: it answered no keep-alive for 5.0 s (limit 5 s). Start the worker again.')
  })

  test('does not fill the world with a waiting worker that went silent', () => {
    const waiting = run(initialState(config), [join('a1'), join('b2')], T0).state
    const expired = run(waiting, [keepAlive('b2'), { kind: 'tick' }], T0 + 5001).state
    const { state } = run(expired, [join('c3')], T0 + 5002)
    expect(state.phase).toBe('waiting')
    expect(state.waitList.map((w) => w.identity)).toEqual(['b2', 'c3'])
  })

  test('keeps a waiting worker whose last keep-alive answer is exactly interval × maxMissed old', () => {
    const waiting = run(initialState(config), [join('a1')], T0).state
    const { state, actions } = run(waiting, [{ kind: 'tick' }], T0 + 5000)
    expect(state.waitList.map((w) => w.identity)).toEqual(['a1'])
    expect(sends(actions)).toEqual([])
  })

  test('sends a KeepAlive to every waiting worker once per heartbeatIntervalMs', () => {
    const waiting = run(initialState(config), [join('a1'), join('b2')], T0).state
    const keepAlives = (actions: RendezvousAction[]) => only(actions, 'broadcast').filter((a) => a.message.type === MessageType.KeepAlive)
    const first = run(waiting, [{ kind: 'tick' }], T0)
    expect(keepAlives(first.actions)).toEqual([{ kind: 'broadcast', to: ['a1', 'b2'], message: controlMessage(MessageType.KeepAlive, 'job-1', { intervalMs: 1000, maxMissed: 5 }) }])
    const tooSoon = run(first.state, [{ kind: 'tick' }], T0 + 999)
    expect(keepAlives(tooSoon.actions)).toEqual([])
    expect(keepAlives(run(tooSoon.state, [{ kind: 'tick' }], T0 + 1000).actions)).toHaveLength(1)
  })
})

describe('running', () => {
  test('releases a barrier only when every rank arrived', () => {
    const barrier = (from: string, rank: number): RendezvousEvent => ({ kind: 'barrier', from, message: controlMessage(MessageType.BarrierRequest, 'job-1', { rank, round: 0, name: 'layout' }) })
    const twoOfThree = run(running(), [barrier('a1', 0), barrier('b2', 1)])
    expect(only(twoOfThree.actions, 'broadcast')).toEqual([])
    const all = run(twoOfThree.state, [barrier('c3', 2)])
    expect(only(all.actions, 'broadcast')).toEqual([{ kind: 'broadcast', to: ['a1', 'b2', 'c3'], message: controlMessage(MessageType.BarrierRelease, 'job-1', { round: 0, name: 'layout' }) }])
    expect(all.state.barrierArrivals).toEqual({})
  })

  test('writes one metrics line per step once every rank reported it (mean loss, the learning rate, max times, summed bytes)', () => {
    const partial = run(running(), [metrics('a1', 0, 0, 1, 90), metrics('b2', 1, 0, 2, 40)])
    expect(only(partial.actions, 'writeMetricsLine')).toEqual([])
    const { actions } = run(partial.state, [metrics('c3', 2, 0, 3, 30)])
    expect(only(actions, 'writeMetricsLine').map((a) => a.line)).toEqual([
      { step: 0, epoch: 0, loss: 2, learningRate: 0.01, samplesPerSecond: (96 * 1000) / 100, computeMs: 90, allReduceMs: 10, bytesSent: 6000 },
    ])
  })

  test('removes a participant whose last heartbeat is older than interval × maxMissed, and fails the job naming it', () => {
    const alive = run(running(), [heartbeat('a1', 0), heartbeat('c3', 2)], T0 + 5000).state
    const { state, actions } = run(alive, [{ kind: 'tick' }], T0 + 5200)
    expect(Object.keys(state.participants).sort()).toEqual(['a1', 'c3'])
    expect(state.phase).toBe('failed')
    const [fail] = only(actions, 'fail')
    expect(fail!.reason).toBe('rank 1 (pid 178 on host-a) missed 5 heartbeats (last one 5.2 s ago); stopping the job. Recovery is not enabled. If its steps take longer than 5 s (slow backend, large batch), raise --heartbeat-max-missed.')
    expect(fail!.exitCode).not.toBe(0)
  })

  test('sends the Abort to the lost participant too: it may be stalled rather than gone', () => {
    const alive = run(running(), [heartbeat('a1', 0), heartbeat('c3', 2)], T0 + 5000).state
    const { actions } = run(alive, [{ kind: 'tick' }], T0 + 5200)
    expect(only(actions, 'broadcast')).toMatchObject([{ to: ['a1', 'b2', 'c3'], message: { type: MessageType.Abort } }])
  })

  test('sends a KeepAlive to every participant once per heartbeatIntervalMs', () => {
    const { actions } = run(running(), [{ kind: 'tick' }], T0 + 100)
    expect(only(actions, 'broadcast')).toEqual([{ kind: 'broadcast', to: ['a1', 'b2', 'c3'], message: controlMessage(MessageType.KeepAlive, 'job-1', { intervalMs: 1000, maxMissed: 5 }) }])
  })

  test('keeps a participant whose last heartbeat is exactly interval × maxMissed old', () => {
    const { state, actions } = run(running(), [{ kind: 'tick' }], T0 + 5000)
    expect(state.phase).toBe('running')
    expect(only(actions, 'fail')).toEqual([])
  })

  test('fails the job with the first WorkerFailed as root cause and lists later failures', () => {
    const error = { name: 'RingAllReduceError', code: 'E_CHUNK_SIZE' as const, message: 'rank 2 got 4096 bytes', context: {} }
    const failed = (from: string, rank: number): RendezvousEvent => ({ kind: 'failed', from, message: controlMessage(MessageType.WorkerFailed, 'job-1', { rank, error }) })
    const first = run(running(), [failed('c3', 2)])
    expect(only(first.actions, 'fail')[0]).toMatchObject({ exitCode: 1, error, reason: 'rank 2 (pid 195 on host-a) failed: RingAllReduceError [E_CHUNK_SIZE]: rank 2 got 4096 bytes' })
    const later = run(first.state, [failed('a1', 0)], T0 + 10)
    expect(only(later.actions, 'fail')).toEqual([])
    expect(later.state.failures.map((f) => f.rank)).toEqual([2, 0])
  })

  test('fails the job when the launcher saw a worker exit non-zero, after the grace for its own report', () => {
    const exited = run(running(), [{ kind: 'workerExited', pid: 0xb2, code: 3, signal: null }])
    expect(only(exited.actions, 'fail')).toEqual([])
    const { actions } = run(exited.state, [{ kind: 'tick' }], T0 + 1000)
    expect(only(actions, 'fail')[0]!.reason).toBe('rank 1 (pid 178 on host-a) exited with code 3 before reporting done; stopping the job. Recovery is not enabled.')
  })

  test('does not fail the job when a clean exit is seen before that worker\'s WorkerDone arrives', () => {
    const exited = run(running(), [{ kind: 'workerExited', pid: 0xb2, code: 0, signal: null }], T0)
    const reported = run(exited.state, [done('b2', 1)], T0 + 10)
    const { state, actions } = run(reported.state, [{ kind: 'tick' }], T0 + 1000)
    expect(only(actions, 'fail')).toEqual([])
    expect(state.phase).toBe('running')
    expect(state.failures).toEqual([])
  })

  test('fails the job when a clean exit is seen and no WorkerDone arrives within the grace', () => {
    const exited = run(running(), [{ kind: 'workerExited', pid: 0xb2, code: 0, signal: null }], T0)
    const { actions } = run(exited.state, [{ kind: 'tick' }], T0 + 1000)
    expect(only(actions, 'fail')[0]!.reason).toBe('rank 1 (pid 178 on host-a) exited with code 0 before reporting done; stopping the job. Recovery is not enabled.')
  })

  test('stops the job on a shutdown request with the given exit code', () => {
    const { state, actions } = run(running(), [{ kind: 'shutdownRequested', reason: 'the launcher got SIGINT', exitCode: 130 }])
    expect(state.phase).toBe('failed')
    expect(only(actions, 'fail')[0]).toMatchObject({ exitCode: 130, reason: 'The job was stopped: the launcher got SIGINT.' })
  })

  test('drops messages from workers that are not participants', () => {
    const { state, actions } = run(running(), [heartbeat('zz', 0)])
    expect(state.participants.zz).toBeUndefined()
    expect(only(actions, 'log')[0]!.line).toMatch(/^Dropped a heartbeat message from worker zz/)
  })
})

describe('finishing', () => {
  const withSteps = () => run(running(), [metrics('a1', 0, 0, 1, 90), metrics('b2', 1, 0, 2, 40), metrics('c3', 2, 0, 3, 30)]).state

  test('finishes with a summary once every rank is done, and shuts the workers down', () => {
    const { state, actions } = run(withSteps(), [done('a1', 0), done('b2', 1, 'h', { sum: 3, count: 10 }), done('c3', 2)])
    expect(state.phase).toBe('finished')
    expect(only(actions, 'finish')[0]!.summary).toEqual({
      jobId: 'job-1', workers: 3, steps: 4, epochs: 1, samplesPerSecond: 960, finalLoss: 1, eval: { accuracy: 21 / 30 },
      replicasIdentical: true, parameterHashes: ['h', 'h', 'h'], backends: ['cpu', 'cpu', 'cpu'],
    })
    expect(only(actions, 'broadcast').at(-1)!.message.type).toBe(MessageType.Shutdown)
  })

  test('reports replicas that differ when one parameterHash differs', () => {
    const { actions } = run(withSteps(), [done('a1', 0), done('b2', 1, 'other'), done('c3', 2)])
    expect(only(actions, 'finish')[0]!.summary).toMatchObject({ replicasIdentical: false, parameterHashes: ['h', 'other', 'h'] })
  })

  test('does not time out a rank that is done while the others finish', () => {
    const { state } = run(withSteps(), [done('a1', 0)])
    const later = run(state, [heartbeat('b2', 1), heartbeat('c3', 2)], T0 + 6000)
    expect(run(later.state, [{ kind: 'tick' }], T0 + 6000).state.phase).toBe('running')
  })
})
