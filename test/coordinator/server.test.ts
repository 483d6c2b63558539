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
    expect(jobReject).toMatchObject({ kind: 'message', message: { type: MessageType.Reject, error: { code: 'E_JOB_MISMATCH' } } })
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
    expect(events.filter((e) => e.type === 'metrics').map((e) => e.type === 'metrics' && e.progress.totalSteps)).toEqual([3, 3, 3])
  }, processTestTimeout)

  test('reports replicasIdentical false when one worker ends with another parameter hash', async () => {
    const config = await jobConfig(2)
    const coordinator = await startCoordinator(config, { security: testSecurity, log: () => {} })
    fakeWorker(coordinator.endpoint, config.jobId, 'same')
    fakeWorker(coordinator.endpoint, config.jobId, 'different')
    const result = await coordinator.done
    expect(result.ok).toBe(true)
    expect(result.summary!.replicasIdentical).toBe(false)
    expect([...result.summary!.parameterHashes].sort()).toEqual(['different', 'same'])
    expect(JSON.parse(await readFile(join(config.outDir, 'summary.json'), 'utf8')).replicasIdentical).toBe(false)
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
    const limitS = escapeRegExp(String((heartbeatIntervalMs * heartbeatMaxMissed) / 1000))
    expect(result.error!.message).toMatch(new RegExp(`^rank [01] \\(pid ${silent.pid} on fake-host\\) missed \\d+ heartbeats \\(last one \\d+\\.\\d s ago\\); stopping the job\\. Recovery is not enabled\\. If its steps take longer than ${limitS} s \\(slow backend, large batch\\), raise --heartbeat-max-missed\\.$`))
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
