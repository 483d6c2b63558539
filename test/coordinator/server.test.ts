import { spawn, type ChildProcess } from 'node:child_process'
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startCoordinator, type CoordinatorEvent } from '@ringtrain/coordinator'
import {
  MessageType, PROTOCOL_VERSION, connectControlClient, controlMessage, resolveJobConfig,
  type ControlMessage, type ControlReceipt, type JobConfig,
} from '@ringtrain/core'
import { CoordinatorClient } from '@ringtrain/worker/unstable-control-client-do-not-import'
import { afterEach, describe, expect, test } from 'vitest'
import { scaled } from '../helpers/slack.js'
import { testKeyFile, testSecurity } from '../helpers/test-key.js'

const fixture = fileURLToPath(new URL('./fixtures/fake-worker.ts', import.meta.url))
const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const children: ChildProcess[] = []
const dirs: string[] = []
// Heartbeats every 100 ms on an idle machine, 5 missed ones mean lost: a fake worker that a
// busy machine stalls for 0.5 s would be declared lost although it is healthy. Scaled by the
// load; the expected messages follow from it.
const heartbeatIntervalMs = scaled(100)
const heartbeatMaxMissed = 5
// Tests with worker processes: starting node + tsx is most of their time, and what load stretches.
const processTestTimeout = scaled(60_000)
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true })
})

async function jobConfig(worldSize: number, overrides: Partial<JobConfig> = {}): Promise<JobConfig> {
  const outDir = await mkdtemp(join(tmpdir(), 'ringtrain-coordinator-'))
  dirs.push(outDir)
  return resolveJobConfig({ jobId: `job-${process.pid}`, worldSize, task: 'none', outDir, epochs: 1, heartbeatIntervalMs, heartbeatMaxMissed, ...overrides })
}

/** Starts a fake worker process; resolves with its exit code and output when it ends. */
function fakeWorker(endpoint: string, jobId: string, hash: string, mode: 'normal' | 'silent' = 'normal') {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, endpoint, jobId, hash, mode], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RINGTRAIN_TEST_SECRET_FILE: testKeyFile() } })
  children.push(child)
  let output = ''
  child.stdout!.on('data', (d) => { output += d })
  child.stderr!.on('data', (d) => { output += d })
  const exited = new Promise<{ code: number | null; output: string }>((resolve) => child.once('exit', (code) => resolve({ code, output })))
  return { pid: child.pid!, exited }
}

/** A raw control client that sends `message` and resolves with the first answer (fails if none comes within `timeoutMs`). */
async function sendRaw(endpoint: string, message: unknown, timeoutMs = scaled(5_000)): Promise<ControlReceipt[]> {
  let answered: (receipt: ControlReceipt) => void = () => {}
  const answer = new Promise<ControlReceipt>((resolve) => { answered = resolve })
  const client = await connectControlClient(endpoint, () => 'the test', { onReceive: (r) => answered(r), log: () => {}, security: testSecurity })
  let timer: NodeJS.Timeout | undefined
  try {
    await client.send(message as ControlMessage)
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from ${endpoint} within ${timeoutMs} ms to ${JSON.stringify(message)}`)), timeoutMs)
    })
    return [await Promise.race([answer, deadline])]
  } finally {
    clearTimeout(timer)
    await client.close({ lingerMs: 0 })
  }
}

describe('the coordinator with worker processes', () => {
  test('runs a job of 3 fake workers to the end: metrics.jsonl per step and summary.json', async () => {
    const config = await jobConfig(3)
    const events: CoordinatorEvent[] = []
    const logs: string[] = []
    const coordinator = await startCoordinator(config, { security: testSecurity, onEvent: (e) => events.push(e), log: (line) => logs.push(line) })

    // Foreign and garbage messages first: refused with a typed error, and the coordinator goes on.
    const joinRequest = controlMessage(MessageType.JoinRequest, config.jobId, { host: 'h', pid: 1, dataEndpoints: [], backend: 'cpu' })
    const [versionReject] = await sendRaw(coordinator.endpoint, { ...joinRequest, version: PROTOCOL_VERSION + 1 })
    expect(versionReject).toMatchObject({ kind: 'message', message: { type: MessageType.Reject, error: { code: 'E_PROTOCOL_VERSION' } } })
    const [jobReject] = await sendRaw(coordinator.endpoint, { ...joinRequest, jobId: 'someone-else' })
    expect(jobReject).toMatchObject({ kind: 'message', message: { type: MessageType.Reject, jobId: '', error: { code: 'E_JOB_MISMATCH' } } })
    expect(JSON.stringify(jobReject), 'a stranger does not learn the job id').not.toContain(config.jobId)
    const [garbageReject] = await sendRaw(coordinator.endpoint, 'not a control message')
    expect(garbageReject).toMatchObject({ kind: 'message', message: { type: MessageType.Reject, error: { code: 'E_BAD_FRAME' } } })
    expect(logs.some((l) => /^\[coordinator\] the coordinator at tcp:\S+ got "not a control message" from worker \w+; expected a control message/.test(l))).toBe(true)

    const workers = [fakeWorker(coordinator.endpoint, config.jobId, 'same'), fakeWorker(coordinator.endpoint, config.jobId, 'same'), fakeWorker(coordinator.endpoint, config.jobId, 'same')]
    const result = await coordinator.done
    expect(result).toMatchObject({ ok: true, exitCode: 0 })
    const exits = await Promise.all(workers.map((w) => w.exited))
    expect(exits.map((e) => e.code)).toEqual([0, 0, 0])
    expect(exits.every((e) => e.output.includes('shutdown:'))).toBe(true)

    const lines = (await readFile(join(config.outDir, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l))
    expect(lines.map((l) => l.step)).toEqual([0, 1, 2])
    expect(lines[1]).toEqual({ step: 1, epoch: 0, loss: 0.5 + 1, learningRate: 0.1, samplesPerSecond: (48 * 1000) / 12, computeMs: 7, allReduceMs: 5, bytesSent: 300 })
    const summary = JSON.parse(await readFile(join(config.outDir, 'summary.json'), 'utf8'))
    expect(summary).toMatchObject({ workers: 3, steps: 3, epochs: 1, finalLoss: 1.25, eval: { accuracy: 27 / 30 }, replicasIdentical: true, parameterHashes: ['same', 'same', 'same'] })
    expect(summary.dropped, 'the three refused messages').toEqual({ notParticipant: 0, wrongRankOrRound: 0, invalid: 3, lateJoin: 0 })
    expect(events.filter((e) => e.type === 'metrics').map((e) => e.type === 'metrics' && e.progress.totalSteps)).toEqual([3, 3, 3])
  }, processTestTimeout)

  test('fails the job with exit code 1 naming the ranks when one worker ends with another parameter hash, and still writes summary.json', async () => {
    const config = await jobConfig(2)
    const coordinator = await startCoordinator(config, { security: testSecurity, log: () => {} })
    const workers = [fakeWorker(coordinator.endpoint, config.jobId, 'same'), fakeWorker(coordinator.endpoint, config.jobId, 'different')]
    const result = await coordinator.done
    expect(result).toMatchObject({ ok: false, exitCode: 1, error: { name: 'LayoutMismatchError', code: 'E_LAYOUT_MISMATCH' } })
    // Two ranks, two hashes: no majority, so both are named.
    expect(result.error!.message).toMatch(/^The replicas differ at the end of the job: no hash is held by most ranks: rank [01] ended with parameter hash (same|different); rank [01] ended with parameter hash (same|different)\./)
    expect(result.summary!.replicasIdentical).toBe(false)
    expect([...result.summary!.parameterHashes].sort()).toEqual(['different', 'same'])
    expect(JSON.parse(await readFile(join(config.outDir, 'summary.json'), 'utf8'))).toMatchObject({ replicasIdentical: false, workers: 2 })
    const exits = await Promise.all(workers.map((w) => w.exited))
    expect(exits.every((e) => e.output.includes('abort: The replicas differ'))).toBe(true)
  }, processTestTimeout)

  test('fails the job with a non-zero exit code naming the rank when a worker stops heartbeating', async () => {
    const config = await jobConfig(2)
    const coordinator = await startCoordinator(config, { security: testSecurity, log: () => {} })
    const healthy = fakeWorker(coordinator.endpoint, config.jobId, 'same')
    const silent = fakeWorker(coordinator.endpoint, config.jobId, 'same', 'silent')
    const result = await coordinator.done
    expect(result.ok).toBe(false)
    expect(result.exitCode).not.toBe(0)
    expect(result.error!.code).toBe('E_PEER_LOST')
    // Whether its liveness thread was bound before the process stopped depends on timing;
    // either way neither connection is heard, and the message says which case it was.
    const limitS = escapeRegExp(String((heartbeatIntervalMs * heartbeatMaxMissed) / 1000))
    const why = `(Neither its liveness thread nor its main thread was heard: the process is stopped, hung or unreachable\\.|If its steps take longer than ${limitS} s \\(slow backend, large batch\\), raise --heartbeat-max-missed\\.)`
    expect(result.error!.message).toMatch(new RegExp(`^rank [01] \\(pid ${silent.pid} on fake-host\\) missed \\d+ heartbeats \\(last one \\d+\\.\\d s ago\\); stopping the job\\. Elastic mode is off \\(--min-workers\\)\\. ${why}$`))
    const { output } = await healthy.exited
    expect(output).toMatch(/abort: rank [01] \(pid \d+ on fake-host\) missed/)
  }, processTestTimeout)

  test('answers an invalid JoinRequest with a Reject carrying the validation error, so the worker need not wait out its join timeout', async () => {
    const config = await jobConfig(2)
    const coordinator = await startCoordinator(config, { security: testSecurity, log: () => {} })
    const badJoin = { ...controlMessage(MessageType.JoinRequest, config.jobId, { host: 'h', pid: 1, dataEndpoints: [], backend: 'cpu' }), pid: -1 }
    const [reject] = await sendRaw(coordinator.endpoint, badJoin)
    expect(reject).toMatchObject({ kind: 'message', message: { type: MessageType.Reject, error: { name: 'FrameError', code: 'E_BAD_FRAME' } } })
    const message = reject!.kind === 'message' && reject!.message.type === MessageType.Reject ? reject!.message.error.message : ''
    expect(message).toMatch(new RegExp(`^the coordinator at ${coordinator.endpoint.replaceAll('.', '\\.')} got a JoinRequest from worker \\w+ whose pid is wrong: expected a non-negative integer, got -1\\. Dropped it\\.$`))
    await coordinator.stop('the test ended')
  })
})

describe('the coordinator and a stranger on its port', () => {
  test('a connection that is not a participant cannot stop, steer or report for a running job; its messages are counted in summary.json', async () => {
    const config = await jobConfig(2)
    const logs: string[] = []
    const coordinator = await startCoordinator(config, { security: testSecurity, log: (line) => logs.push(line) })
    const joinAs = (pid: number) => CoordinatorClient.join(coordinator.endpoint, { jobId: config.jobId, host: 'test-host', pid, localRank: pid - 1, dataEndpoints: [`tcp://127.0.0.1:${6000 + pid}`], backend: 'cpu' }, { timeoutMs: scaled(10_000), log: () => {}, security: testSecurity })
    const [a, b] = await Promise.all([joinAs(1), joinAs(2)])
    try {
      a.startHeartbeats(() => 0)
      b.startHeartbeats(() => 0)
      // A stranger on the port, with the job id even: WorkerFailed, metrics and a done report as rank 1, then garbage.
      let answered: (receipt: ControlReceipt) => void = () => {}
      const answer = new Promise<ControlReceipt>((resolve) => { answered = resolve })
      const stranger = await connectControlClient(coordinator.endpoint, () => 'the stranger', { onReceive: (r) => answered(r), log: () => {}, security: testSecurity })
      const error = { name: 'PeerLostError', code: 'E_PEER_LOST' as const, message: 'rank 1 is gone', context: {} }
      await stranger.send(controlMessage(MessageType.WorkerFailed, config.jobId, { rank: 1, error }))
      await stranger.send(controlMessage(MessageType.StepMetrics, config.jobId, { rank: 1, round: 0, step: 0, epoch: 0, loss: 0, learningRate: 1, samples: 1, computeMs: 1, allReduceMs: 1, bytesSent: 1 }))
      await stranger.send(controlMessage(MessageType.WorkerDone, config.jobId, { rank: 1, steps: 1, parameterHash: 'h', finalLoss: 0, eval: { accuracy: { sum: 10, count: 10 } }, evalExamples: 20, backend: 'cpu' }))
      await stranger.send('garbage' as unknown as ControlMessage)
      // One connection's messages arrive in order: its Reject means the three before were handled.
      const reject = await Promise.race([answer, new Promise<never>((_, fail) => setTimeout(() => fail(new Error('no Reject for the garbage')), scaled(5_000)))])
      expect(reject).toMatchObject({ kind: 'message', message: { type: MessageType.Reject, jobId: '', error: { code: 'E_BAD_FRAME' } } })
      await stranger.close({ lingerMs: 0 })

      // The job goes on: the real ranks' reports are the ones that count.
      await Promise.all([a.barrier('start', scaled(5_000)), b.barrier('start', scaled(5_000))])
      for (const client of [a, b]) {
        await client.sendMetrics({ step: 0, epoch: 0, loss: 1, learningRate: 1, samples: 8, computeMs: 1, allReduceMs: 1, bytesSent: 8 })
        await client.done({ steps: 1, parameterHash: 'h', finalLoss: 1, eval: { accuracy: { sum: 4, count: 10 } }, evalExamples: 20, backend: 'cpu' })
      }
      const result = await coordinator.done
      expect(result).toMatchObject({ ok: true, exitCode: 0 })
      const summary = JSON.parse(await readFile(join(config.outDir, 'summary.json'), 'utf8'))
      expect(summary).toMatchObject({ eval: { accuracy: 0.4 }, dropped: { notParticipant: 3, wrongRankOrRound: 0, invalid: 1, lateJoin: 0 } })
      expect(logs.filter((l) => l.includes('Dropped a'))).toHaveLength(1)
    } finally {
      await Promise.all([a.close({ lingerMs: 0 }), b.close({ lingerMs: 0 })])
    }
  }, processTestTimeout)
})

describe('the coordinator on a port in use', () => {
  test('refuses to start with E_CONFIG naming the endpoint, and leaves the running job\'s files alone', async () => {
    const config = await jobConfig(1)
    const first = await startCoordinator(config, { security: testSecurity, log: () => {} })
    // The first job's output so far (as if steps had completed).
    await appendFile(join(config.outDir, 'metrics.jsonl'), '{"step":0}\n')
    await writeFile(join(config.outDir, 'summary.json'), '{"from":"the first job"}\n')
    const logs: string[] = []
    const second = await startCoordinator(config, { security: testSecurity, bind: first.endpoint, log: (line) => logs.push(line) }).catch((error: unknown) => error)
    expect(second).toMatchObject({ name: 'ConfigError', code: 'E_CONFIG', message: `--bind ${first.endpoint} is in use; pick another port, or port 0 for any free one.` })
    expect(await readFile(join(config.outDir, 'metrics.jsonl'), 'utf8')).toBe('{"step":0}\n')
    expect(await readFile(join(config.outDir, 'summary.json'), 'utf8')).toBe('{"from":"the first job"}\n')
    expect(logs).toEqual([])
    // The first coordinator still serves its job.
    const [reject] = await sendRaw(first.endpoint, { ...controlMessage(MessageType.JoinRequest, 'someone-else', { host: 'h', pid: 1, dataEndpoints: [] }) })
    expect(reject).toMatchObject({ kind: 'message', message: { type: MessageType.Reject, error: { code: 'E_JOB_MISMATCH' } } })
    expect((await first.stop('the test ended')).exitCode).toBe(1)
  })
})
