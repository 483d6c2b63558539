import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startCoordinator, type Coordinator } from '@ringtrain/coordinator'
import {
  DistError, MessageType, connectControlClient, controlMessage, openControlServer, resolveJobConfig, type ControlMessage, type ControlServer, type JobConfig,
} from '@ringtrain/core'
import { afterEach, describe, expect, test } from 'vitest'
import { scaled } from '../helpers/slack.js'
import { CoordinatorClient } from '@ringtrain/worker/unstable-internals-do-not-import'
import { testSecurity } from '../helpers/test-key.js'
import { generateJobKey, INSECURE, type JobSecurity } from '@ringtrain/core'

const quiet = { log: () => {} }
const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

// Keep-alives and heartbeats every 100 ms on an idle machine, 5 missed ones mean gone: a
// busy machine can stall a process for longer than 0.5 s, and a live peer would be declared
// lost. The rate is scaled by the load; every expected message and bound follows from it.
const heartbeatIntervalMs = scaled(100)
const heartbeatMaxMissed = 5
const silenceLimitMs = heartbeatIntervalMs * heartbeatMaxMissed

/**
 * Something to wait for without sleeping: `changed()` after each change it depends on, and
 * `until()` resolves once `check()` holds, or fails naming `what` after `ms`.
 */
function condition() {
  const waiters = new Set<() => void>()
  return {
    changed: () => { for (const waiter of [...waiters]) waiter() },
    until: (what: string, check: () => boolean, ms = scaled(5_000)): Promise<void> => {
      let waiter: () => void = () => {}
      const met = new Promise<void>((resolve) => {
        waiter = () => { if (check()) resolve() }
        waiters.add(waiter)
        waiter()
      })
      return within(ms, what, met).finally(() => waiters.delete(waiter))
    },
  }
}

async function coordinatorFor(worldSize: number, overrides: Partial<JobConfig> = {}) {
  const outDir = await mkdtemp(join(tmpdir(), 'ringtrain-client-'))
  const config = resolveJobConfig({ jobId: 'client-test', worldSize, task: 'none', outDir, heartbeatIntervalMs, heartbeatMaxMissed, ...overrides })
  const logs: string[] = []
  const logged = condition()
  const coordinator: Coordinator = await startCoordinator(config, { security: testSecurity, log: (line) => { logs.push(line); logged.changed() } })
  cleanup.push(() => rm(outDir, { recursive: true, force: true }), () => coordinator.stop('the test ended'))
  /** Resolves once the coordinator logged a line matching `pattern`. */
  const untilLogged = (pattern: RegExp) => logged.until(`a coordinator log line matching ${pattern}`, () => logs.some((l) => pattern.test(l)))
  return { config, coordinator, logs, untilLogged }
}

/** Joins as `pid`, with local rank pid − 1 so that ranks do not depend on which join lands first. */
function joinAs(endpoint: string, pid: number, jobId = 'client-test', timeoutMs = 10_000, security: JobSecurity = testSecurity) {
  return CoordinatorClient.join(endpoint, { jobId, host: 'test-host', pid, localRank: pid - 1, dataEndpoints: [`tcp://127.0.0.1:${6000 + pid}`], backend: 'cpu' }, { timeoutMs, security, ...quiet }).then((client) => {
    cleanup.push(() => client.close({ lingerMs: 0 }))
    return client
  })
}

/**
 * A coordinator the test controls: a real ROUTER that assigns rank 0 of 1 on the first join
 * and sends a KeepAlive every intervalMs until `goAway()` closes it without a word (a
 * coordinator killed mid-job). `heard` holds what it received.
 */
async function fakeCoordinator(config: JobConfig, options: { assign: boolean }) {
  const heard: ControlMessage[] = []
  let keepAlivesSent = 0
  const progress = condition()
  let worker: string | undefined
  const server: ControlServer = await openControlServer('tcp://127.0.0.1:0', {
    security: testSecurity,
    jobId: config.jobId,
    log: () => {},
    onReceive: (receipt) => {
      if (receipt.kind !== 'message') return
      heard.push(receipt.message)
      progress.changed()
      if (receipt.message.type !== MessageType.JoinRequest || worker !== undefined) return
      worker = receipt.from
      if (options.assign) {
        void server.send(worker, controlMessage(MessageType.Assignment, config.jobId, { rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, round: 0, peers: [[]], hosts: ['test-host'], config }))
      }
    },
  })
  const keepAlive = controlMessage(MessageType.KeepAlive, config.jobId, { intervalMs: config.heartbeatIntervalMs, maxMissed: config.heartbeatMaxMissed })
  const timer = setInterval(() => {
    if (worker === undefined) return
    void server!.send(worker, keepAlive)
    keepAlivesSent++
    progress.changed()
  }, config.heartbeatIntervalMs)
  const goAway = async () => {
    clearInterval(timer)
    await server.close({ lingerMs: 0 })
  }
  cleanup.push(goAway)
  /** Resolves once `count` keep-alives were sent (at least count × intervalMs from the join). */
  const untilKeepAlivesSent = (count: number) => progress.until(`${count} keep-alives sent`, () => keepAlivesSent >= count, scaled(count * config.heartbeatIntervalMs + 5_000))
  /** Resolves once the worker answered `count` keep-alives. */
  const untilAnswered = (count: number) => progress.until(`${count} keep-alives answered`, () => heard.filter((m) => m.type === MessageType.KeepAlive).length >= count)
  return { endpoint: server.endpoint, heard, goAway, untilKeepAlivesSent, untilAnswered }
}

/** `promise`'s outcome, or a failure naming `what` when it has not settled within `ms` (a hang fails with a report). */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms) })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const silentReason = /^the coordinator at tcp:\/\/127\.0\.0\.1:\d+ has been silent for \d+\.\d s \(\d+ keep-alives missed\); stopping\.$/

describe('CoordinatorClient and a coordinator that goes away', () => {
  const config = resolveJobConfig({ jobId: 'client-test', worldSize: 1, task: 'none', outDir: 'unused', heartbeatIntervalMs, heartbeatMaxMissed })

  test('aborts within heartbeatIntervalMs × heartbeatMaxMissed of its last keep-alive, and done() and failed() settle with a full send queue', async () => {
    const coordinator = await fakeCoordinator(config, { assign: true })
    const client = await joinAs(coordinator.endpoint, 1)
    client.startHeartbeats(() => 0)
    let abortedAt: number | undefined
    const aborted = new Promise<string>((resolve) => client.onAbort((reason) => { abortedAt = Date.now(); resolve(reason) }))
    // 8 keep-alives: the worker lived through 1.6 × its silence limit (longer if load slowed the timer).
    await coordinator.untilKeepAlivesSent(8)
    expect(abortedAt, `keep-alives every ${heartbeatIntervalMs} ms keep a worker going past the ${silenceLimitMs} ms limit`).toBeUndefined()

    await coordinator.goAway()
    const goneAt = Date.now()
    // Fill ZeroMQ's queue to the gone coordinator (1000 messages): without a send timeout, every later send hangs.
    let sent = 0
    let flooding = true
    const flood = (async () => {
      for (let step = 0; flooding && step < 1200; step++, sent++) await client.sendMetrics({ step, epoch: 0, loss: 1, learningRate: 1, samples: 1, computeMs: 1, allReduceMs: 1, bytesSent: 1 })
    })()
    for (let last = -1; sent !== last || sent < 900; await sleep(30)) last = sent
    const done = client.done({ steps: 1, parameterHash: 'h', finalLoss: 1, eval: {}, backend: 'cpu' })

    expect(await within(scaled(2_000), 'the abort', aborted)).toMatch(silentReason)
    // The last keep-alive came before goneAt, so the abort is due within the silence limit of
    // it, plus the watch's check interval; on an idle machine within 1 s of goneAt. Load
    // delays timers, so the margin over the limit is scaled, but stays far below any other
    // way out (the 10 s join timeout, a barrier's 5 s).
    expect(abortedAt! - goneAt).toBeLessThan(silenceLimitMs + scaled(500))
    await expect(within(scaled(1_000), 'done()', done)).rejects.toMatchObject({ name: 'PeerLostError', code: 'E_PEER_LOST' })
    await expect(within(scaled(1_000), 'failed()', client.failed(new Error('boom')))).rejects.toMatchObject({ name: 'PeerLostError', code: 'E_PEER_LOST' })
    await expect(within(scaled(1_000), 'a barrier', client.barrier('after', 5_000))).rejects.toMatchObject({ code: 'E_PEER_LOST' })
    flooding = false
    await client.close({ lingerMs: 0 })
    await within(scaled(3_000), 'the flood of metrics', flood)
  })

  test('done() rejects with the silence, not a send timeout, when the last keep-alive was read just as it began', async () => {
    const coordinator = await fakeCoordinator(config, { assign: true })
    const client = await joinAs(coordinator.endpoint, 1)
    client.startHeartbeats(() => 0)
    await coordinator.untilKeepAlivesSent(2)
    await coordinator.goAway()
    // Metrics to the gone coordinator until ZeroMQ's queue (1000 messages) is full: the first
    // send it does not take within an event-loop turn stays queued, and done() waits behind it.
    for (let step = 0; ; step++) {
      expect(step, 'the queue fills within 5000 messages').toBeLessThan(5000)
      const sent = client.sendMetrics({ step, epoch: 0, loss: 1, learningRate: 1, samples: 1, computeMs: 1, allReduceMs: 1, bytesSent: 1 })
      const waits = await Promise.race([sent.then(() => false), new Promise<boolean>((resolve) => setImmediate(() => resolve(true)))])
      if (waits) break
    }
    // A busy event loop can read a keep-alive sent before the coordinator went away only now:
    // the silence limit then ends after done()'s own send limit.
    ;(client as unknown as { mailbox: { lastHeardAt: number } }).mailbox.lastHeardAt = Date.now()
    const done = client.done({ steps: 1, parameterHash: 'h', finalLoss: 1, eval: {}, backend: 'cpu' })
    await expect(within(silenceLimitMs + scaled(2_000), 'done()', done)).rejects.toMatchObject({ name: 'PeerLostError', code: 'E_PEER_LOST' })
    await client.close({ lingerMs: 0 })
  })

  test('gives up a join once the coordinator that sent keep-alives falls silent, long before the join timeout, and answers its keep-alives meanwhile', async () => {
    const coordinator = await fakeCoordinator(config, { assign: false })
    const joining = joinAs(coordinator.endpoint, 1, 'client-test', 30_000)
    await coordinator.untilAnswered(2)
    await coordinator.goAway()
    // Long before the 30 s join timeout: the silence limit plus what load adds.
    const error = await within(silenceLimitMs + scaled(2_500), 'the join', joining.catch((e: DistError) => e))
    expect(error).toMatchObject({ name: 'PeerLostError', code: 'E_PEER_LOST' })
    expect((error as Error).message).toMatch(new RegExp(`^pid 1 on test-host heard nothing from the coordinator at tcp://127\\.0\\.0\\.1:\\d+ for \\d+\\.\\d s; it sends a keep-alive every ${heartbeatIntervalMs} ms and ${heartbeatMaxMissed} missed ones mean it is gone\\. See the coordinator's log, or raise --heartbeat-max-missed if it is only slow\\.$`))
    expect(coordinator.heard.filter((m) => m.type === MessageType.KeepAlive).length).toBeGreaterThanOrEqual(2)
  })
})

describe('CoordinatorClient and the coordinator\'s wait list', () => {
  test('a worker that gave up waiting does not fill the world: the coordinator drops it once it stops answering keep-alives', async () => {
    const { coordinator, untilLogged } = await coordinatorFor(2)
    await expect(joinAs(coordinator.endpoint, 1, 'client-test', 200)).rejects.toMatchObject({ code: 'E_TIMEOUT' })
    await untilLogged(/^\[coordinator\] pid 1 on test-host answered none of the last \d+ keep-alives .*; removed it from the wait list \(0 of 2 workers wait\)\.$/)
    const [b, c] = await within(scaled(5_000), 'the joins of two live workers', Promise.all([joinAs(coordinator.endpoint, 2), joinAs(coordinator.endpoint, 3)]))
    expect([b.assignment.hosts, b.worldSize, [b.rank, c.rank]]).toEqual([['test-host', 'test-host'], 2, [0, 1]])
    expect(b.assignment.peers).toEqual([['tcp://127.0.0.1:6002'], ['tcp://127.0.0.1:6003']])
  })

  test('a worker that waits longer than heartbeatIntervalMs × heartbeatMaxMissed stays on the wait list while it answers keep-alives', async () => {
    const { config, coordinator, logs } = await coordinatorFor(3)
    const first = joinAs(coordinator.endpoint, 1)
    // A second waiting worker, a bare socket, counts the coordinator's keep-alives: they go
    // out once per interval by the coordinator's own clock, to every waiting worker. When it
    // has had 2 × maxMissed + 1 of them, pid 1 has waited more than twice the silence limit.
    let keepAlives = 0
    const counted = condition()
    const keepAlive = controlMessage(MessageType.KeepAlive, config.jobId, { intervalMs: heartbeatIntervalMs, maxMissed: heartbeatMaxMissed })
    const observer = await connectControlClient(coordinator.endpoint, () => 'the observer', {
      security: testSecurity,
      jobId: config.jobId,
      log: () => {},
      onReceive: (receipt) => {
        if (receipt.kind !== 'message' || receipt.message.type !== MessageType.KeepAlive) return
        keepAlives++
        void observer.send(keepAlive, { droppable: true }) // answered, so the observer stays too
        counted.changed()
      },
    })
    cleanup.push(() => observer.close({ lingerMs: 0 }))
    await observer.send(controlMessage(MessageType.JoinRequest, config.jobId, { host: 'test-host', pid: 9, localRank: 8, dataEndpoints: ['tcp://127.0.0.1:6009'], backend: 'cpu' }))
    const wanted = 2 * heartbeatMaxMissed + 1
    await counted.until(`${wanted} keep-alives`, () => keepAlives >= wanted, scaled(wanted * heartbeatIntervalMs + 5_000))
    const [a, b] = await within(scaled(5_000), 'the joins', Promise.all([first, joinAs(coordinator.endpoint, 2)]))
    expect([a.rank, b.rank]).toEqual([0, 1]) // the observer, local rank 8, is rank 2
    expect(logs.filter((l) => l.includes('removed it from the wait list'))).toEqual([])
  })
})

describe('CoordinatorClient', () => {
  test('joins, passes a barrier, reports metrics and done, and hears Shutdown', async () => {
    const { config, coordinator } = await coordinatorFor(2)
    const [a, b] = await Promise.all([joinAs(coordinator.endpoint, 1), joinAs(coordinator.endpoint, 2)])
    expect([a.rank, b.rank]).toEqual([0, 1])
    expect(a.assignment).toMatchObject({ worldSize: 2, round: 0, peers: [['tcp://127.0.0.1:6001'], ['tcp://127.0.0.1:6002']], config })
    a.startHeartbeats(() => 0)
    b.startHeartbeats(() => 0)
    await Promise.all([a.barrier('start', 5_000), b.barrier('start', 5_000)])
    const shutdown = new Promise((resolve) => a.onShutdown(resolve))
    for (const client of [a, b]) {
      await client.sendMetrics({ step: 0, epoch: 0, loss: 1, learningRate: 1, samples: 8, computeMs: 1, allReduceMs: 1, bytesSent: 8 })
      await client.done({ steps: 1, parameterHash: 'h', finalLoss: 1, eval: {}, backend: 'cpu' })
    }
    expect(await shutdown).toMatch(/finished/)
    expect((await coordinator.done).summary).toMatchObject({ workers: 2, replicasIdentical: true })
  })

  test('rejects the join of a worker of another job with E_JOB_MISMATCH', async () => {
    const { coordinator } = await coordinatorFor(1)
    await expect(joinAs(coordinator.endpoint, 1, 'other-job')).rejects.toMatchObject({ name: 'FrameError', code: 'E_JOB_MISMATCH' })
  })

  test('rejects a join when the job already runs with a ConfigError', async () => {
    const { coordinator } = await coordinatorFor(1)
    await joinAs(coordinator.endpoint, 1)
    await expect(joinAs(coordinator.endpoint, 2)).rejects.toMatchObject({ name: 'ConfigError', code: 'E_CONFIG' })
  })

  test('times out a join nobody answers with E_TIMEOUT, naming the endpoint', async () => {
    const { coordinator } = await coordinatorFor(2)
    const error = await joinAs(coordinator.endpoint, 1, 'client-test', 300).catch((e: DistError) => e)
    expect(error).toMatchObject({ code: 'E_TIMEOUT' })
    expect((error as Error).message).toContain(`waited 300 ms for the coordinator at ${coordinator.endpoint}`)
  })

  test('fails a pending barrier with the root cause when another rank reports a failure', async () => {
    const { coordinator } = await coordinatorFor(2)
    const [a, b] = await Promise.all([joinAs(coordinator.endpoint, 1), joinAs(coordinator.endpoint, 2)])
    a.startHeartbeats(() => 0)
    const aborted = new Promise<string>((resolve) => a.onAbort((reason) => resolve(reason)))
    const waiting = a.barrier('never', 5_000)
    await b.failed(new DistError('E_LAYOUT_MISMATCH', 'rank 1 has another layout'))
    await expect(waiting).rejects.toMatchObject({ code: 'E_LAYOUT_MISMATCH', message: 'rank 1 has another layout' })
    expect(await aborted).toMatch(/^rank 1 \(pid 2 on test-host\) failed: DistError \[E_LAYOUT_MISMATCH\]: rank 1 has another layout$/)
    expect((await coordinator.done).exitCode).toBe(1)
  })
})

describe('CoordinatorClient and the job key', () => {
  // The join timeout is long: a refused key must end the join at once, not at the timeout.
  const joinTimeoutMs = scaled(60_000)

  test('a worker holding another job\'s key is refused at the handshake and gives up at once with E_CONFIG', async () => {
    const { coordinator } = await coordinatorFor(2)
    const started = Date.now()
    const error = await joinAs(coordinator.endpoint, 1, 'client-test', joinTimeoutMs, { mode: 'key', key: generateJobKey() }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(DistError)
    expect((error as DistError).code).toBe('E_CONFIG')
    expect((error as DistError).message).toMatch(/the handshake with the coordinator at .* failed .*the coordinator holds another job's key, or runs without one.*Give the coordinator and every worker the same --secret-file/)
    expect(Date.now() - started).toBeLessThan(joinTimeoutMs / 2)
  })

  test('a worker without a key fails its handshake with a keyed coordinator, and one with a key fails with an --insecure one, both at once', async () => {
    const keyed = await coordinatorFor(2)
    const error = await joinAs(keyed.coordinator.endpoint, 1, 'client-test', joinTimeoutMs, INSECURE).catch((e: unknown) => e)
    expect((error as DistError).code).toBe('E_CONFIG')
    expect((error as DistError).message).toContain('the coordinator requires a job key; start this worker with its --secret-file')

    const outDir = await mkdtemp(join(tmpdir(), 'ringtrain-client-'))
    const config = resolveJobConfig({ jobId: 'client-test', worldSize: 2, task: 'none', outDir, heartbeatIntervalMs, heartbeatMaxMissed })
    const insecure = await startCoordinator(config, { security: INSECURE, ...quiet })
    cleanup.push(() => rm(outDir, { recursive: true, force: true }), () => insecure.stop('the test ended'))
    const error2 = await joinAs(insecure.endpoint, 1, 'client-test', joinTimeoutMs).catch((e: unknown) => e)
    expect((error2 as DistError).code).toBe('E_CONFIG')
    expect((error2 as DistError).message).toContain('the coordinator holds another job\'s key, or runs without one (--insecure)')
  })
})

describe('the liveness thread reports where the worker stands', () => {
  const config = resolveJobConfig({ jobId: 'client-test', worldSize: 1, task: 'none', outDir: 'unused', heartbeatIntervalMs, heartbeatMaxMissed })

  test('each Alive carries the latest position the main thread published: the collective it waits in, then the step it computes outside collectives', async () => {
    const coordinator = await fakeCoordinator(config, { assign: true })
    const client = await joinAs(coordinator.endpoint, 1)
    const alives = () => coordinator.heard.filter((m): m is Extract<ControlMessage, { type: typeof MessageType.Alive }> => m.type === MessageType.Alive)
    const heard = condition()
    const timer = setInterval(heard.changed, 10)
    cleanup.push(async () => clearInterval(timer))
    client.setStep(4)
    client.setPosition({ step: 4, op: 9, collective: 'allReduce', phase: 'reduce-scatter, ring step 1 of 1, from rank 1', waitingFor: 1, sinceMs: Date.now() - 1000 })
    await heard.until('an Alive in allReduce op 9', () => alives().some((m) => m.op === 9))
    const inCall = alives().find((m) => m.op === 9)!
    expect(inCall).toMatchObject({ step: 4, collective: 'allReduce', phase: 'reduce-scatter, ring step 1 of 1, from rank 1', waitingFor: 1 })
    expect(inCall.inPhaseMs).toBeGreaterThanOrEqual(1000)
    // The call ended at step 4; the main thread moved on to step 5 and computes.
    client.setPosition({ step: 4, op: 10, phase: 'between collectives', sinceMs: Date.now() - 5000 })
    client.setStep(5)
    await heard.until('an Alive between collectives at step 5', () => alives().some((m) => m.op === 10 && m.step === 5))
    const between = alives().find((m) => m.op === 10 && m.step === 5)!
    expect(between).toMatchObject({ phase: 'between collectives' })
    expect(between.collective).toBeUndefined()
    expect(between.waitingFor).toBeUndefined()
    // Since the step began (just now), not since the call ended 5 s ago.
    expect(between.inPhaseMs).toBeLessThan(4000)
  })
})
