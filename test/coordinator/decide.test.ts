import { decide, initialState, type RendezvousAction, type RendezvousEvent, type RendezvousState } from '@ringtrain/coordinator/unstable-internals-do-not-import'
import { MessageType, PROTOCOL_VERSION, controlMessage, resolveJobConfig, type Assignment, type JoinRequest } from '@ringtrain/core'
import { describe, expect, test } from 'vitest'
import { runEvents } from '../helpers/decide-events.js'

const config = resolveJobConfig({ jobId: 'job-1', worldSize: 3, task: 'task.ts', outDir: 'out', epochs: 1, heartbeatIntervalMs: 1000, heartbeatMaxMissed: 5 })
const T0 = 1_000_000

function join(from: string, fields: Partial<JoinRequest> = {}): RendezvousEvent {
  const message = { ...controlMessage(MessageType.JoinRequest, 'job-1', { host: 'host-a', pid: Number.parseInt(from, 16), dataEndpoints: [`tcp://127.0.0.1:${from}`], backend: 'cpu' }), ...fields }
  return { kind: 'join', from, message }
}

/** Applies events in order at time `now` (T0 by default). */
const run = (state: RendezvousState, events: RendezvousEvent[], now = T0) => runEvents(state, events, now)

const running = () => run(initialState(config), [join('a1'), join('b2'), join('c3')]).state
const sends = (actions: RendezvousAction[]) => actions.filter((a) => a.kind === 'send')
const only = <K extends RendezvousAction['kind']>(actions: RendezvousAction[], kind: K) => actions.filter((a): a is Extract<RendezvousAction, { kind: K }> => a.kind === kind)
const keepAlive = (from: string): RendezvousEvent => ({ kind: 'keepAlive', from, message: controlMessage(MessageType.KeepAlive, 'job-1', { intervalMs: 1000, maxMissed: 5 }) })
const heartbeat = (from: string, rank: number, step = 0): RendezvousEvent => ({ kind: 'heartbeat', from, message: controlMessage(MessageType.Heartbeat, 'job-1', { rank, round: 0, step }) })
const metrics = (from: string, rank: number, step: number, loss: number, computeMs: number) => ({
  kind: 'metrics' as const, from, message: controlMessage(MessageType.StepMetrics, 'job-1', { rank, round: 0, step, epoch: 0, loss, learningRate: 0.01, samples: 32, computeMs, allReduceMs: 10, bytesSent: 1000 * (rank + 1) }),
})
// An evaluation set of 30 samples: a shard of 10 per rank.
const done = (from: string, rank: number, parameterHash = 'h', accuracy = { sum: 9, count: 10 }, fields: { eval?: Record<string, { sum: number; count: number }>; evalExamples?: number } = {}) => ({
  kind: 'done' as const, from, message: controlMessage(MessageType.WorkerDone, 'job-1', { rank, steps: 4, parameterHash, finalLoss: rank, eval: { accuracy }, evalExamples: 30, backend: 'cpu', ...fields }),
})
const failed = (from: string, rank?: number): RendezvousEvent => ({ kind: 'failed', from, message: controlMessage(MessageType.WorkerFailed, 'job-1', { ...(rank !== undefined ? { rank } : {}), error: { name: 'TaskError', code: 'E_TASK', message: 'boom', context: {} } }) })
const barrier = (from: string, rank: number, round = 0): RendezvousEvent => ({ kind: 'barrier', from, message: controlMessage(MessageType.BarrierRequest, 'job-1', { rank, round, name: 'layout' }) })
const noDrops = { notParticipant: 0, wrongRankOrRound: 0, invalid: 0, lateJoin: 0 }
const rejectOf = (action: RendezvousAction | undefined) => (action?.kind === 'send' && action.message.type === MessageType.Reject ? action.message : undefined)

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

  test('ranks follow the schedulers\' rank hints, local ranks number each host\'s workers in rank order, and unhinted workers fill the free ranks', () => {
    const events = [join('a1', { host: 'x', rankHint: 2 }), join('b2', { host: 'y', rankHint: 0 }), join('c3', { host: 'x' }), join('d4', { host: 'y', rankHint: 1 })]
    const { state } = run(initialState({ ...config, worldSize: 4 }), events)
    const byRank = Object.values(state.participants).sort((p, q) => p.rank - q.rank).map((p) => [p.identity, p.host, p.localRank])
    expect(byRank).toEqual([['b2', 'y', 0], ['d4', 'y', 1], ['a1', 'x', 0], ['c3', 'x', 1]])
  })

  test('refuses a join whose scheduler started another number of workers, or that asks for a rank out of range or already asked for, naming both', () => {
    const { state, actions } = run(initialState(config), [
      join('a1', { worldSizeHint: 4, rankHint: 0, hintSource: 'SLURM_PROCID/SLURM_NTASKS' }),
      join('b2', { rankHint: 3, hintSource: 'RANK' }),
      join('c3', { rankHint: 1, worldSizeHint: 3, hintSource: 'OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE' }),
      join('d4', { rankHint: 1, hintSource: 'JOB_COMPLETION_INDEX' }),
    ])
    expect(state.waitList.map((w) => w.identity)).toEqual(['c3'])
    expect(sends(actions).map((a) => rejectOf(a)?.error.message)).toEqual([
      'The coordinator refused the join of pid 161 on host-a: its launcher started 4 workers (SLURM_PROCID/SLURM_NTASKS), but the job runs 3 workers (-n). Start the coordinator with -n 4, or start 3 workers.',
      'The coordinator refused the join of pid 178 on host-a: it asks for rank 3 (RANK), but the job runs 3 workers (-n), ranks 0-2.',
      'The coordinator refused the join of pid 212 on host-a: it asks for rank 1 (JOB_COMPLETION_INDEX), which pid 195 on host-a asked for first (OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE). Each worker of a job needs its own rank.',
    ])
  })

  test('in an elastic job the hints are preferences: a round smaller than the scheduler\'s world still starts, and only a world above --max-workers is refused', () => {
    const elastic = { ...config, worldSize: 2, minWorkers: 1, maxWorkers: 3 }
    const { state, actions } = run(initialState(elastic), [join('a1', { rankHint: 2, worldSizeHint: 3 }), join('b2', { rankHint: 2, worldSizeHint: 3 }), join('c3', { worldSizeHint: 5 })])
    expect(rejectOf(sends(actions).find((a) => rejectOf(a) !== undefined))?.error.message).toMatch(/its launcher started 5 workers, but the job runs at most 3 workers \(--max-workers\)/)
    const byRank = Object.values(state.participants).sort((p, q) => p.rank - q.rank).map((p) => p.identity)
    expect(byRank).toEqual(['a1', 'b2'])
  })

  test('rejects a join of another protocol version or another job, with the typed error', () => {
    const { state, actions } = run(initialState(config), [join('a1', { version: PROTOCOL_VERSION + 1 }), join('b2', { jobId: 'other' })])
    expect(state.waitList).toEqual([])
    const codes = sends(actions).map((a) => a.kind === 'send' && a.message.type === MessageType.Reject && a.message.error.code)
    expect(codes).toEqual(['E_PROTOCOL_VERSION', 'E_JOB_MISMATCH'])
  })

  test('rejects a join when the job is already running (world full), and counts it', () => {
    const { state, actions } = run(running(), [join('d4')])
    const [reject] = sends(actions)
    expect(reject).toMatchObject({ to: 'd4', message: { type: MessageType.Reject, jobId: '', error: { name: 'ConfigError', code: 'E_CONFIG' } } })
    expect(rejectOf(reject)!.error.message).toBe('The coordinator refused the join of pid 212 on host-a: it admits no more workers. Elastic joins are off (--min-workers).')
    expect(state.dropped).toEqual({ ...noDrops, lateJoin: 1 })
    // The coordinator's own log may say more than the sender hears.
    expect(only(actions, 'log').map((a) => a.line)).toEqual([`${rejectOf(reject)!.error.message} (the job is running, round 0, with 3 workers)`])
  })

  test('answers every message rejected at the edge from a worker that is not a participant with a Reject carrying the error, without this job\'s id', () => {
    const foreign = {
      name: 'FrameError', code: 'E_JOB_MISMATCH' as const,
      message: 'the coordinator at tcp://127.0.0.1:1 got a JoinRequest for job "other" from worker ff; this is job "job-1". Check the --coordinator address and the job id of that worker.',
      context: { receiver: 'the coordinator at tcp://127.0.0.1:1', sender: 'worker ff', expected: 'job-1', got: 'other' },
    }
    const badJoin = { name: 'FrameError', code: 'E_BAD_FRAME' as const, message: 'the coordinator got a JoinRequest from worker ee whose pid is wrong: expected a non-negative integer, got -1. Dropped it.', context: {} }
    const { state, actions } = run(initialState(config), [{ kind: 'invalidMessage', from: 'ff', error: foreign }, { kind: 'invalidMessage', from: 'ee', error: badJoin }])
    const toForeign = { name: 'FrameError', code: 'E_JOB_MISMATCH' as const, message: 'The coordinator refused a message for job "other": it does not serve that job. Check the --coordinator address and the job id.', context: { got: 'other' } }
    expect(sends(actions)).toEqual([
      { kind: 'send', to: 'ff', message: controlMessage(MessageType.Reject, '', { error: toForeign }) },
      { kind: 'send', to: 'ee', message: controlMessage(MessageType.Reject, '', { error: badJoin }) },
    ])
    expect(only(actions, 'log').map((a) => a.line)).toEqual([foreign.message, badJoin.message])
    expect(state.dropped).toEqual({ ...noDrops, invalid: 2 })
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
    expect(sends(actions)).toEqual([{ kind: 'send', to: 'a1', message: controlMessage(MessageType.Reject, '', { error: garbage }) }])
    expect(only(actions, 'log').at(-1)!.line).toBe('Removed pid 161 on host-a from the wait list: its message was refused (1 of 3 workers wait).')
  })

  test('removes a waiting worker that answered no keep-alive for interval × maxMissed, logs it and tells it why', () => {
    const waiting = run(initialState(config), [join('a1'), join('b2')], T0).state
    const answered = run(waiting, [keepAlive('b2')], T0 + 4000).state
    const { state, actions } = run(answered, [{ kind: 'tick' }], T0 + 5001)
    expect(state.waitList.map((w) => w.identity)).toEqual(['b2'])
    expect(only(actions, 'log').map((a) => a.line)).toEqual(['pid 161 on host-a answered none of the last 5 keep-alives (silent for 5.0 s) while it waited; removed it from the wait list (1 of 3 workers wait).'])
    const [reject] = sends(actions)
    expect(reject).toMatchObject({ to: 'a1', message: { type: MessageType.Reject, jobId: '', error: { name: 'PeerLostError', code: 'E_PEER_LOST' } } })
    expect(rejectOf(reject)!.error.message).toBe('The coordinator removed pid 161 on host-a from its wait list: it answered no keep-alive for 5.0 s (limit 5 s). Start the worker again.')
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
    expect(fail!.reason).toBe('rank 1 (pid 178 on host-a) missed 5 heartbeats (last one 5.2 s ago); stopping the job. Elastic mode is off (--min-workers). If its steps take longer than 5 s (slow backend, large batch), raise --heartbeat-max-missed.')
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
    expect(only(actions, 'fail')[0]!.reason).toBe('rank 1 (pid 178 on host-a) exited with code 3 before reporting done; stopping the job. Elastic mode is off (--min-workers).')
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
    expect(only(actions, 'fail')[0]!.reason).toBe('rank 1 (pid 178 on host-a) exited with code 0 before reporting done; stopping the job. Elastic mode is off (--min-workers).')
  })

  test('stops the job on a shutdown request with the given exit code', () => {
    const { state, actions } = run(running(), [{ kind: 'shutdownRequested', reason: 'the launcher got SIGINT', exitCode: 130 }])
    expect(state.phase).toBe('failed')
    expect(only(actions, 'fail')[0]).toMatchObject({ exitCode: 130, reason: 'The job was stopped: the launcher got SIGINT.' })
  })

  test('drops messages from workers that are not participants', () => {
    const { state, actions } = run(running(), [heartbeat('zz', 0)])
    expect(state.participants.zz).toBeUndefined()
    expect(only(actions, 'log').map((a) => a.line)).toEqual(['Dropped a Heartbeat from worker zz, which is not a participant of round 0 (phase running).'])
    expect(state.dropped).toEqual({ ...noDrops, notParticipant: 1 })
  })
})

describe('finishing', () => {
  const withSteps = () => run(running(), [metrics('a1', 0, 0, 1, 90), metrics('b2', 1, 0, 2, 40), metrics('c3', 2, 0, 3, 30)]).state

  test('finishes with a summary once every rank is done, and shuts the workers down', () => {
    const { state, actions } = run(withSteps(), [done('a1', 0), done('b2', 1, 'h', { sum: 3, count: 10 }), done('c3', 2)])
    expect(state.phase).toBe('finished')
    expect(only(actions, 'finish')[0]!.summary).toEqual({
      jobId: 'job-1', workers: 3, steps: 4, epochs: 1, samplesPerSecond: 960, finalLoss: 1, eval: { accuracy: 21 / 30 },
      replicasIdentical: true, skippedSteps: 0, parameterHashes: ['h', 'h', 'h'], backends: ['cpu', 'cpu', 'cpu'], dropped: noDrops,
      rounds: [{ round: 0, worldSize: 3, firstStep: 0, why: 'the job started', members: ['rank 0 (pid 161 on host-a)', 'rank 1 (pid 178 on host-a)', 'rank 2 (pid 195 on host-a)'] }],
    })
    expect(only(actions, 'broadcast').at(-1)!.message.type).toBe(MessageType.Shutdown)
  })

  test('fails the job when one parameterHash differs, naming that rank, and still hands over the summary', () => {
    const { state, actions } = run(withSteps(), [done('a1', 0), done('b2', 1, 'other'), done('c3', 2)])
    expect(state.phase).toBe('failed')
    expect(only(actions, 'finish')).toEqual([])
    const [fail] = only(actions, 'fail')
    expect(fail).toMatchObject({ exitCode: 1, error: { name: 'LayoutMismatchError', code: 'E_LAYOUT_MISMATCH', context: { ranks: [1], expected: 'h', got: ['h', 'other', 'h'] } } })
    expect(fail!.reason).toBe('The replicas differ at the end of the job: rank 1 ended with parameter hash other, while ranks 0, 2 ended with parameter hash h. The ranks did not apply identical updates, so the job failed; summary.json lists every rank\'s hash.')
    expect(fail!.summary).toMatchObject({ replicasIdentical: false, parameterHashes: ['h', 'other', 'h'], dropped: noDrops })
    expect(only(actions, 'broadcast').at(-1)!.message.type).toBe(MessageType.Abort)
  })

  test('names every group of ranks when no parameter hash is held by most ranks', () => {
    const config4 = { ...config, worldSize: 4 }
    const four = run(initialState(config4), [join('a1'), join('b2'), join('c3'), join('d4')]).state
    const reports = [done('a1', 0, 'x'), done('b2', 1, 'x'), done('c3', 2, 'y'), done('d4', 3, 'z')].map((d) => ({ ...d, message: { ...d.message, evalExamples: 40 } }))
    const [fail] = only(run(four, reports).actions, 'fail')
    expect(fail!.exitCode).toBe(1)
    expect(fail!.reason).toBe('The replicas differ at the end of the job: no hash is held by most ranks: ranks 0, 1 ended with parameter hash x; rank 2 ended with parameter hash y; rank 3 ended with parameter hash z. The ranks did not apply identical updates, so the job failed; summary.json lists every rank\'s hash.')
    expect(fail!.error.context).toMatchObject({ ranks: [0, 1, 2, 3] })
  })

  test('does not time out a rank that is done while the others finish', () => {
    const { state } = run(withSteps(), [done('a1', 0)])
    const later = run(state, [heartbeat('b2', 1), heartbeat('c3', 2)], T0 + 6000)
    expect(run(later.state, [{ kind: 'tick' }], T0 + 6000).state.phase).toBe('running')
  })
})

describe('only the participants of the round are heard', () => {
  const outsider = 'e0e0e0e0'
  const fromOutsider = (): RendezvousEvent[] => [
    failed(outsider, 1), metrics(outsider, 1, 0, 0.001, 1), done(outsider, 1, 'h', { sum: 10, count: 10 }), heartbeat(outsider, 1), barrier(outsider, 1), keepAlive(outsider),
  ]

  test('drops WorkerFailed, StepMetrics, WorkerDone, Heartbeat, BarrierRequest and KeepAlive from a connection that is not a participant, and counts them', () => {
    const before = running()
    const { state, actions } = run(before, fromOutsider())
    expect(state.phase).toBe('running')
    expect(state.failures).toEqual([])
    expect(state.doneReports).toEqual({})
    expect(state.stepReports).toEqual({})
    expect(state.barrierArrivals).toEqual({})
    expect(state.participants).toEqual(before.participants)
    expect(actions.filter((a) => a.kind !== 'log')).toEqual([])
    expect(state.dropped).toEqual({ ...noDrops, notParticipant: 6 })
  })

  test('the job still finishes with the real ranks\' evaluation, and the drops in its summary', () => {
    const attacked = run(running(), fromOutsider()).state
    const { actions } = run(attacked, [done('a1', 0, 'h', { sum: 4, count: 10 }), done('b2', 1, 'h', { sum: 4, count: 10 }), done('c3', 2, 'h', { sum: 5, count: 10 })])
    const [finish] = only(actions, 'finish')
    expect(finish!.summary).toMatchObject({ eval: { accuracy: 13 / 30 }, replicasIdentical: true, dropped: { ...noDrops, notParticipant: 6 } })
  })

  test('drops a WorkerFailed from a stranger while workers wait, and counts it', () => {
    const waiting = run(initialState(config), [join('a1')]).state
    const { state, actions } = run(waiting, [failed(outsider)])
    expect(state.phase).toBe('waiting')
    expect(only(actions, 'fail')).toEqual([])
    expect(state.dropped.notParticipant).toBe(1)
  })

  test('still fails the job on the WorkerFailed of a worker on the wait list (it failed before its Assignment)', () => {
    const waiting = run(initialState(config), [join('a1'), join('b2')]).state
    const { state, actions } = run(waiting, [failed('a1')])
    expect(state.phase).toBe('failed')
    expect(only(actions, 'fail')[0]).toMatchObject({ exitCode: 1, reason: 'pid 161 on host-a failed: TaskError [E_TASK]: boom' })
    expect(state.dropped).toEqual(noDrops)
  })

  test('drops messages from a participant that name another rank or round, and counts them', () => {
    const before = running()
    const events: RendezvousEvent[] = [
      heartbeat('a1', 1, 5), { ...heartbeat('a1', 0, 5), message: { ...(heartbeat('a1', 0, 5) as { message: object }).message, round: 1 } } as RendezvousEvent,
      metrics('a1', 2, 0, 1, 1), barrier('a1', 0, 3), done('a1', 1), failed('a1', 2),
    ]
    const { state, actions } = run(before, events, T0 + 100)
    expect(state.phase).toBe('running')
    expect(state.failures).toEqual([])
    expect(state.doneReports).toEqual({})
    expect(state.stepReports).toEqual({})
    expect(state.barrierArrivals).toEqual({})
    expect(state.participants.a1).toEqual(before.participants.a1)
    expect(actions.filter((a) => a.kind !== 'log')).toEqual([])
    expect(state.dropped).toEqual({ ...noDrops, wrongRankOrRound: 6 })
    expect(only(actions, 'log')[0]!.line).toBe('Dropped a Heartbeat from rank 0 (pid 161 on host-a) that names rank 1, round 0; it is rank 0 of round 0.')
  })

  test('a participant\'s WorkerFailed without a rank (sent before its Assignment arrived) still fails the job', () => {
    const { state } = run(running(), [failed('b2')])
    expect(state.phase).toBe('failed')
    expect(state.failures.map((f) => f.rank)).toEqual([1])
  })
})

describe('answers to strangers', () => {
  const namesNothingOfTheJob = (text: string) => {
    for (const secret of ['job-1', 'running', 'round', 'world', '3 workers', 'phase']) expect(text, `names ${secret}`).not.toContain(secret)
  }

  test('a Reject carries no job id and names nothing of the coordinator\'s job, only what the sender sent', () => {
    const runningJob = run(running(), [join('d4'), join('d5', { jobId: 'other' }), join('d6', { version: PROTOCOL_VERSION + 1 })]).actions
    const rejects = sends(runningJob).map(rejectOf)
    expect(rejects.map((r) => r?.jobId)).toEqual(['', '', ''])
    expect(rejects.map((r) => r?.error.code)).toEqual(['E_CONFIG', 'E_JOB_MISMATCH', 'E_PROTOCOL_VERSION'])
    for (const reject of rejects) {
      namesNothingOfTheJob(reject!.error.message)
      namesNothingOfTheJob(JSON.stringify(reject!.error.context))
    }
    expect(rejects[1]!.error.message).toBe('The coordinator refused the join of pid 213 on host-a, which asked for job "other": it does not serve that job. Check the --coordinator address and the job id.')
  })

  test('an edge error that quotes the job id is replaced by its code before it goes out', () => {
    const leaky = { name: 'FrameError', code: 'E_BAD_FRAME' as const, message: 'something about job "job-1"', context: { expected: 'job-1' } }
    const [reject] = sends(run(running(), [{ kind: 'invalidMessage', from: 'e1', error: leaky }]).actions)
    expect(rejectOf(reject)!.error).toEqual({ name: 'FrameError', code: 'E_BAD_FRAME', message: 'The coordinator refused a message [E_BAD_FRAME].', context: {} })
  })

  test('one Reject per sender per interval: a flood gets one answer, not thousands', () => {
    let state = running()
    const actions: RendezvousAction[] = []
    for (let i = 0; i < 1000; i++) {
      const decision = decide(state, join('d4'), T0 + i * 9) // 1000 joins within 9 s
      state = decision.state
      actions.push(...decision.actions)
    }
    expect(sends(actions)).toHaveLength(1)
    expect(state.dropped.lateJoin).toBe(1000)
    expect(sends(decide(state, join('d4'), T0 + 10_000).actions), 'the next interval gets the next answer').toHaveLength(1)
  })
})

describe('bounded logs under a flood', () => {
  const dropLines = (actions: RendezvousAction[]) => only(actions, 'log').map((a) => a.line).filter((line) => !/heartbeats/.test(line))
  const garbage = (from: string): RendezvousEvent => ({ kind: 'invalidMessage', from, error: { name: 'FrameError', code: 'E_BAD_FRAME', message: `the coordinator got 3 bytes from worker ${from} that are not valid msgpack; expected a control message. Dropped them.`, context: {} } })

  test('10,000 invalid messages from one sender in 10 s: one line, then one line with the count of the others', () => {
    let state = running()
    const lines: string[] = []
    const rejects: RendezvousAction[] = []
    for (let i = 0; i < 10_000; i++) {
      const decision = decide(state, garbage('ab12cd34ef'), T0 + i)
      state = decision.state
      lines.push(...only(decision.actions, 'log').map((a) => a.line))
      rejects.push(...sends(decision.actions))
    }
    expect(lines).toEqual(['the coordinator got 3 bytes from worker ab12cd34ef that are not valid msgpack; expected a control message. Dropped them.'])
    expect(rejects).toHaveLength(1)
    expect(state.dropped.invalid).toBe(10_000)
    // The tick also finds the silent ranks lost; only the lines about drops matter here.
    const flushed = decide(state, { kind: 'tick' }, T0 + 10_000)
    expect(dropLines(flushed.actions)).toEqual(['… and 9,999 more like it from worker ab12cd34 in the last 10 s (invalid).'])
    expect(flushed.state.dropLog.keys, 'the key is forgotten once its interval is over').toEqual({})
  })

  test('10,000 senders with one invalid message each in 10 s: a bounded number of lines and Rejects, then one line with the count', () => {
    let state = running()
    const lines: string[] = []
    const rejects: RendezvousAction[] = []
    let largestState = 0
    for (let i = 0; i < 10_000; i++) {
      const decision = decide(state, garbage(`f${i.toString(16).padStart(7, '0')}`), T0 + i)
      state = decision.state
      lines.push(...only(decision.actions, 'log').map((a) => a.line))
      rejects.push(...sends(decision.actions))
      largestState = Math.max(largestState, Object.keys(state.dropLog.keys).length + Object.keys(state.rejects.keys).length)
    }
    const { linesPerInterval, rejectsPerInterval } = state.dropLimits
    expect(lines).toHaveLength(linesPerInterval)
    expect(rejects).toHaveLength(rejectsPerInterval)
    expect(largestState).toBeLessThanOrEqual(linesPerInterval + rejectsPerInterval)
    expect(state.dropped.invalid).toBe(10_000)
    const flushed = decide(state, { kind: 'tick' }, T0 + 10_000)
    expect(dropLines(flushed.actions)).toEqual([`Did not log 9,980 more dropped messages in the last 10 s (at most ${linesPerInterval} lines per 10 s): 9,980 invalid.`])
  })

  test('a participant\'s flood of messages naming another rank is logged once per interval too', () => {
    let state = running()
    let lines = 0
    for (let i = 0; i < 5000; i++) {
      const decision = decide(state, heartbeat('a1', 2), T0 + i)
      state = decision.state
      lines += only(decision.actions, 'log').length
    }
    expect(lines).toBe(1)
    expect(state.dropped.wrongRankOrRound).toBe(5000)
  })
})

describe('plausible evaluation', () => {
  // 31 samples over 3 ranks: shards of 11, 10 and 10.
  const reportsWith = (fields: Array<Parameters<typeof done>[4]>) => [done('a1', 0, 'h', undefined, fields[0]), done('b2', 1, 'h', undefined, fields[1]), done('c3', 2, 'h', undefined, fields[2])]
  const loss = (count: number, sum = count) => ({ loss: { sum, count } })

  test('finishes when every rank counted at most its shard, and per-element metrics may count more', () => {
    const { state, actions } = run(running(), reportsWith([
      { eval: { ...loss(11), mse: { sum: 1, count: 44 } }, evalExamples: 31 },
      { eval: { ...loss(10), mse: { sum: 1, count: 40 } }, evalExamples: 31 },
      { eval: { ...loss(10), mse: { sum: 1, count: 40 } }, evalExamples: 31 },
    ]))
    expect(state.phase).toBe('finished')
    expect(only(actions, 'finish')[0]!.summary.eval).toEqual({ loss: 1, mse: 3 / 124 })
  })

  test('fails the job when a rank counted more samples than its shard holds, naming the rank, the metric, expected and got', () => {
    const { state, actions } = run(running(), reportsWith([
      { eval: loss(11), evalExamples: 31 }, { eval: loss(11), evalExamples: 31 }, { eval: loss(10), evalExamples: 31 },
    ]))
    expect(state.phase).toBe('failed')
    const [fail] = only(actions, 'fail')
    expect(fail).toMatchObject({ exitCode: 1, error: { name: 'FrameError', code: 'E_BAD_FRAME', context: { rank: 1, metric: 'loss', expected: 'at most 10', got: 11 } } })
    expect(fail!.reason).toBe('rank 1 (pid 178 on host-a) reported eval metric "loss" over 11 samples, but its shard of the 31-sample evaluation set holds 10: expected at most 10, got 11. The evaluation is not plausible; the job failed.')
    expect(fail!.summary).toBeUndefined()
  })

  test('fails the job when the ranks disagree on the size of the evaluation set, naming the rank that differs', () => {
    const { actions } = run(running(), reportsWith([{ evalExamples: 30 }, { evalExamples: 30 }, { evalExamples: 3000 }]))
    const [fail] = only(actions, 'fail')
    expect(fail).toMatchObject({ exitCode: 1, error: { code: 'E_BAD_FRAME', context: { rank: 2, metric: 'evalExamples', expected: '30 samples', got: '3000 samples' } } })
    expect(fail!.reason).toBe('The ranks disagree on the size of the evaluation set: rank 2 reports 3000 samples, while ranks 0, 1 report 30 samples. Every rank evaluates a shard of the same set, so the evaluation is not plausible; the job failed.')
  })

  test('fails the job when a rank counted samples without saying how large the evaluation set is', () => {
    const { actions } = run(running(), reportsWith([{ evalExamples: undefined }, { evalExamples: undefined }, { evalExamples: undefined }]))
    expect(only(actions, 'fail')[0]!.reason).toBe('rank 0 (pid 161 on host-a) reported eval metric "accuracy" over 10 samples, but it reported no evaluation set (evalExamples): expected at most 0, got 10. The evaluation is not plausible; the job failed.')
  })

  test('finishes without an evaluation set when no rank evaluated anything', () => {
    const { state } = run(running(), reportsWith([{ eval: {}, evalExamples: undefined }, { eval: {}, evalExamples: undefined }, { eval: {}, evalExamples: undefined }]))
    expect(state.phase).toBe('finished')
  })

  test('fails the job on a sum that is not finite, naming the rank and the metric', () => {
    const { actions } = run(running(), reportsWith([{}, { eval: { accuracy: { sum: Number.POSITIVE_INFINITY, count: 10 } } }, {}]))
    expect(only(actions, 'fail')[0]).toMatchObject({ error: { context: { rank: 1, metric: 'accuracy', expected: 'a finite sum', got: Number.POSITIVE_INFINITY } } })
  })
})

describe('liveness from a thread of its own (Alive)', () => {
  const alive = (from: string, token: string, step = 0): RendezvousEvent => ({ kind: 'alive', from, message: controlMessage(MessageType.Alive, 'job-1', { token, step }) })
  const withTokens = () => run(initialState(config), [join('a1', { livenessToken: 'tok-a' }), join('b2', { livenessToken: 'tok-b' }), join('c3', { livenessToken: 'tok-c' })]).state
  const lost = (state: RendezvousState, now: number) => run(state, [{ kind: 'tick' }], now)

  test('binds the first connection that brings a participant\'s token, and counts its Alive messages as that participant\'s sign of life', () => {
    let state = withTokens()
    ;({ state } = run(state, [alive('f1', 'tok-a'), alive('f2', 'tok-b'), alive('f3', 'tok-c')], T0 + 100))
    expect(Object.values(state.participants).map((p) => [p.rank, p.livenessIdentity])).toEqual([[0, 'f1'], [1, 'f2'], [2, 'f3']])
    // The main threads say nothing for 20 s (one long step); the liveness threads keep talking.
    for (let t = T0 + 1000; t <= T0 + 20_000; t += 1000) {
      ;({ state } = run(state, [alive('f1', 'tok-a'), alive('f2', 'tok-b'), alive('f3', 'tok-c'), { kind: 'tick' }], t))
    }
    expect(state.phase).toBe('running')
    expect(Object.keys(state.participants)).toHaveLength(3)
    expect(state.dropped).toEqual(noDrops)
    expect(Object.values(state.participants).map((p) => p.step), 'Alive is liveness, not progress').toEqual([0, 0, 0])
  })

  test('a participant whose liveness thread and main thread both went silent is still declared lost (a stopped process)', () => {
    let state = withTokens()
    ;({ state } = run(state, [alive('f1', 'tok-a'), alive('f2', 'tok-b'), alive('f3', 'tok-c')], T0 + 100))
    ;({ state } = run(state, [alive('f1', 'tok-a'), alive('f3', 'tok-c')], T0 + 5000))
    const { state: after, actions } = lost(state, T0 + 5200)
    expect(after.phase).toBe('failed')
    expect(only(actions, 'fail')[0]!.reason).toBe('rank 1 (pid 178 on host-a) missed 5 heartbeats (last one 5.1 s ago); stopping the job. Elastic mode is off (--min-workers). Neither its liveness thread nor its main thread was heard: the process is stopped, hung or unreachable.')
  })

  test('sends the coordinator\'s KeepAlive to bound liveness connections too', () => {
    const { state } = run(withTokens(), [alive('f1', 'tok-a')], T0 + 100)
    const { actions } = run(state, [{ kind: 'tick' }], T0 + 200)
    expect(only(actions, 'broadcast')).toMatchObject([{ to: ['a1', 'b2', 'c3', 'f1'], message: { type: MessageType.KeepAlive } }])
  })

  test('drops and counts an Alive with an unknown token, and never logs the token', () => {
    const { state, actions } = run(withTokens(), [alive('ee', 'guess')], T0 + 100)
    expect(state.dropped).toEqual({ ...noDrops, notParticipant: 1 })
    expect(Object.values(state.participants).every((p) => p.livenessIdentity === undefined)).toBe(true)
    expect(JSON.stringify(actions)).not.toContain('guess')
    // A participant that sent no token (an older client) cannot be claimed with an empty one.
    const untokened = run(running(), [alive('ee', '')], T0 + 100).state
    expect(untokened.dropped).toEqual({ ...noDrops, notParticipant: 1 })
  })

  test('drops and counts an Alive from a second connection with a bound token: it does not keep that participant alive', () => {
    let state = withTokens()
    ;({ state } = run(state, [alive('f1', 'tok-a'), alive('f2', 'tok-b'), alive('f3', 'tok-c')], T0 + 100))
    // Someone else with rank 1's token keeps sending; rank 1's own thread and main thread are silent.
    const r = run(state, [alive('f1', 'tok-a'), alive('f3', 'tok-c'), alive('99', 'tok-b')], T0 + 5000)
    expect(r.state.dropped).toEqual({ ...noDrops, notParticipant: 1 })
    expect(r.state.participants['b2']!.livenessIdentity).toBe('f2')
    expect(JSON.stringify(r.actions)).not.toContain('tok-b')
    expect(lost(r.state, T0 + 5200).state.phase).toBe('failed')
  })

  test('drops and counts an Alive from a bound connection that carries another participant\'s token', () => {
    let state = withTokens()
    ;({ state } = run(state, [alive('f1', 'tok-a'), alive('f2', 'tok-b')], T0 + 100))
    ;({ state } = run(state, [alive('f1', 'tok-b')], T0 + 4000))
    expect(state.dropped).toEqual({ ...noDrops, wrongRankOrRound: 1 })
    expect(state.participants['b2']!.lastHeartbeatAt).toBe(T0 + 100)
  })

  test('binds a waiting worker\'s liveness thread at once, keeps it on the wait list by Alive alone, and carries the binding into its rank', () => {
    let { state } = run(initialState(config), [join('a1', { livenessToken: 'tok-a' }), alive('f1', 'tok-a')])
    expect(state.dropped).toEqual(noDrops)
    expect(state.waitList[0]!.livenessIdentity).toBe('f1')
    // Its main connection is silent; the thread alone keeps it on the wait list.
    ;({ state } = run(state, [alive('f1', 'tok-a', 0), { kind: 'tick' }], T0 + 30_000))
    expect(state.waitList.map((w) => w.identity)).toEqual(['a1'])
    // A stranger with an unknown token is still dropped while the job waits.
    ;({ state } = run(state, [alive('zz', 'tok-unknown')], T0 + 30_001))
    expect(state.dropped).toEqual({ ...noDrops, notParticipant: 1 })
    ;({ state } = run(state, [join('b2', { livenessToken: 'tok-b' }), join('c3', { livenessToken: 'tok-c' })], T0 + 30_002))
    expect(state.phase).toBe('running')
    expect(state.participants['a1']!.livenessIdentity).toBe('f1')
  })
})
