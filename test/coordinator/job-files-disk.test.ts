/**
 * The coordinator's output files on a real, tiny file system: a 64 KiB tmpfs mounted for the
 * test (CI runs as root; elsewhere the mount tests are skipped), filled so that metrics.jsonl
 * or summary.json hits ENOSPC, or remounted read-only for EROFS. Each test unmounts in
 * `afterEach`, so nothing stays mounted.
 */
import { execFileSync } from 'node:child_process'
import { appendFile, mkdtemp, readdir, readFile, rm, rmdir, statfs, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decide, initialState } from '@ringtrain/coordinator/unstable-internals-do-not-import'
import { startCoordinator, type Coordinator, type CoordinatorEvent, type CoordinatorResult } from '@ringtrain/coordinator'
import { MessageType, controlMessage, resolveJobConfig, type DistError, type JobConfig } from '@ringtrain/core'
import { CoordinatorClient } from '@ringtrain/worker/unstable-control-client-do-not-import'
import { afterEach, describe, expect, test } from 'vitest'
import { scaled } from '../helpers/slack.js'
import { testSecurity } from '../helpers/test-key.js'

const heartbeatIntervalMs = scaled(100)
const heartbeatMaxMissed = 5
const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})
const isRoot = process.getuid?.() === 0

/** A fresh tmpfs of `sizeKb` KiB, unmounted and removed after the test. */
async function tinyDisk(sizeKb = 64): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ringtrain-disk-'))
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k`, 'tmpfs', dir])
  cleanup.push(async () => {
    execFileSync('umount', [dir])
    await rmdir(dir)
  })
  return dir
}

/** Fills `dir`'s file system until `leaveBytes` are free (0: until a write fails with ENOSPC). */
async function fill(dir: string, leaveBytes: number): Promise<void> {
  const { bavail, bsize } = await statfs(dir)
  const filler = join(dir, `filler-${leaveBytes}`)
  const bytes = bavail * bsize - leaveBytes
  if (bytes > 0) await writeFile(filler, Buffer.alloc(bytes))
  if (leaveBytes > 0) return
  for (;;) {
    const full = await appendFile(filler, Buffer.alloc(512)).then(() => false, (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOSPC') return true
      throw error
    })
    if (full) return
  }
}

async function outDirInTmp(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ringtrain-out-'))
  cleanup.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

function jobConfig(outDir: string, jobId = `disk-${process.pid}`): JobConfig {
  return resolveJobConfig({ jobId, worldSize: 1, task: 'none', outDir, epochs: 1, heartbeatIntervalMs, heartbeatMaxMissed })
}

/** A coordinator of one rank and that rank, joined in this process. */
async function startJob(config: JobConfig) {
  const events: CoordinatorEvent[] = []
  const eventWaiters = new Set<() => void>()
  const logs: string[] = []
  const coordinator: Coordinator = await startCoordinator(config, {
    security: testSecurity,
    log: (line) => logs.push(line),
    onEvent: (event) => { events.push(event); for (const waiter of [...eventWaiters]) waiter() },
  })
  cleanup.push(() => coordinator.stop('the test ended'))
  let result: CoordinatorResult | undefined
  void coordinator.done.then((r) => { result = r; for (const waiter of [...eventWaiters]) waiter() })
  const client = await CoordinatorClient.join(coordinator.endpoint, { jobId: config.jobId, host: 'test-host', pid: 1, localRank: 0, dataEndpoints: ['tcp://127.0.0.1:6001'], backend: 'cpu' }, { timeoutMs: scaled(10_000), security: testSecurity, log: () => {} })
  cleanup.push(() => client.close({ lingerMs: 0 }))
  client.startHeartbeats(() => 0)
  const aborted = new Promise<DistError>((resolve) => client.onAbort((_, error) => resolve(error)))
  /** Resolves once `check` holds after an event (or the job's end); fails naming `what` after a while. */
  const until = (what: string, check: () => boolean) => new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { eventWaiters.delete(waiter); reject(new Error(`${what}: not within ${scaled(10_000)} ms`)) }, scaled(10_000))
    const waiter = () => { if (!check()) return; clearTimeout(timer); eventWaiters.delete(waiter); resolve() }
    eventWaiters.add(waiter)
    waiter()
  })
  /** Reports step `step` and waits until the coordinator handled it (its metrics event) or the job ended. */
  const step = async (step: number) => {
    await client.sendMetrics({ step, epoch: 0, loss: 1 / (step + 1), learningRate: 0.1, samples: 32, computeMs: 5, allReduceMs: 2, bytesSent: 1024 })
    await until(`the metrics of step ${step}`, () => result !== undefined || events.some((e) => e.type === 'metrics' && e.line.step === step))
  }
  const finish = (steps: number) => client.done({ steps, parameterHash: 'h', finalLoss: 0.5, eval: { accuracy: { sum: 9, count: 10 } }, evalExamples: 10, backend: 'cpu' })
  return { coordinator, client, logs, events, aborted, step, finish, ended: () => result !== undefined }
}

async function metricsLines(path: string): Promise<Array<{ step: number }>> {
  const text = await readFile(path, 'utf8')
  if (text === '') return []
  expect(text.endsWith('\n'), `${path} ends with a whole line`).toBe(true)
  return text.slice(0, -1).split('\n').map((line) => JSON.parse(line) as { step: number })
}

describe.skipIf(!isRoot)('the coordinator on a full or read-only disk (needs root for mount)', () => {
  test('metrics.jsonl hitting ENOSPC mid-job stops the job with an OutputWriteError naming the path, aborts the worker, and leaves only whole lines', async () => {
    const disk = await tinyDisk()
    await fill(disk, 8192) // room for .ringtrain-out and a page of metrics: some twenty lines
    const config = jobConfig(disk)
    const job = await startJob(config)
    const metricsPath = join(disk, 'metrics.jsonl')
    let steps = 0
    while (!job.ended()) {
      expect(steps, 'the disk fills within 1000 steps').toBeLessThan(1000)
      await job.step(steps++)
    }
    const result = await job.coordinator.done
    expect(result).toMatchObject({ ok: false, exitCode: 1, error: { name: 'OutputWriteError', code: 'E_OUTPUT', context: { path: metricsPath, got: 'ENOSPC' } } })
    expect(result.error!.message).toMatch(new RegExp(`^could not write step \\d+ of the metrics to ${metricsPath}: ENOSPC \\(the disk is full\\)\\. .* ${metricsPath} keeps the \\d+ bytes of whole lines written before it\\.$`))
    const abort = await job.aborted
    expect(abort).toMatchObject({ name: 'OutputWriteError', code: 'E_OUTPUT', context: { path: metricsPath, got: 'ENOSPC' } })
    expect(job.logs.some((l) => l.includes(`The coordinator stops the job: could not write step`))).toBe(true)

    const lines = await metricsLines(metricsPath)
    expect(lines.length, 'some lines fit before the disk filled').toBeGreaterThan(0)
    expect(lines.map((l) => l.step)).toEqual(lines.map((_, i) => i))
    const committed = Number(/keeps the (\d+) bytes/.exec(result.error!.message)![1])
    expect((await readFile(metricsPath)).byteLength).toBe(committed)
    expect(lines.length, 'the line that did not fit is not in the file').toBeLessThan(steps)
  })

  test('summary.json hitting ENOSPC at the end fails the job naming the path; the previous run\'s summary.json stays and no temp file is left', async () => {
    const disk = await tinyDisk()
    const previousSummary = '{"jobId":"the previous run"}\n'
    await writeFile(join(disk, 'summary.json'), previousSummary)
    await writeFile(join(disk, 'metrics.jsonl'), '{"step":0}\n')
    const config = jobConfig(disk)
    const job = await startJob(config)
    expect(await readFile(join(disk, 'summary.json'), 'utf8'), 'kept while the run goes on').toBe(previousSummary)
    expect(await readFile(join(disk, 'metrics.previous.jsonl'), 'utf8')).toBe('{"step":0}\n')
    await fill(disk, 0)
    await job.finish(0)
    const result = await job.coordinator.done
    const summaryPath = join(disk, 'summary.json')
    expect(result).toMatchObject({ ok: false, exitCode: 1, error: { name: 'OutputWriteError', code: 'E_OUTPUT', context: { path: summaryPath, got: 'ENOSPC' } } })
    expect(result.error!.message).toMatch(new RegExp(`^could not write the job summary to ${summaryPath}: ENOSPC \\(the disk is full\\)\\.`))
    expect(result.summary, 'what summary.json would have held').toMatchObject({ jobId: config.jobId, workers: 1 })
    expect(job.events.at(-1)).toMatchObject({ type: 'failed', exitCode: 1 })
    expect(job.logs.at(-1)).toBe(`[coordinator] Job ${JSON.stringify(config.jobId)} failed with exit code 1.`)
    expect(await readFile(summaryPath, 'utf8')).toBe(previousSummary)
    expect((await readdir(disk)).filter((name) => name.endsWith('.tmp'))).toEqual([])
  })

  test('a read-only output folder (EROFS) refuses the start with an OutputWriteError naming metrics.jsonl, and changes nothing', async () => {
    const disk = await tinyDisk()
    await writeFile(join(disk, 'summary.json'), '{"jobId":"the previous run"}\n')
    execFileSync('mount', ['-o', 'remount,ro', disk])
    const metricsPath = join(disk, 'metrics.jsonl')
    const error = await startCoordinator(jobConfig(disk), { security: testSecurity, log: () => {} }).then(() => undefined, (e: unknown) => e)
    expect(error).toMatchObject({ name: 'OutputWriteError', code: 'E_OUTPUT', context: { path: metricsPath, got: 'EROFS' } })
    expect((error as Error).message).toMatch(new RegExp(`^could not write metrics to ${metricsPath}: EROFS \\(the file system is read-only\\)\\.`))
    expect((await readdir(disk)).sort()).toEqual(['summary.json'])
  })
})

describe('an --out folder reused by a second run', () => {
  test('keeps the previous summary.json until the new run writes its own, which carries the jobId and startedAt; the old metrics move to metrics.previous.jsonl', async () => {
    const outDir = await outDirInTmp()
    const first = await startJob(jobConfig(outDir, 'first'))
    await first.step(0)
    await first.step(1)
    await first.finish(2)
    expect(await first.coordinator.done).toMatchObject({ ok: true })
    const firstSummaryText = await readFile(join(outDir, 'summary.json'), 'utf8')
    const firstSummary = JSON.parse(firstSummaryText) as { jobId: string; startedAt: string }
    expect(Object.keys(firstSummary).slice(0, 2)).toEqual(['jobId', 'startedAt'])
    expect(firstSummary).toMatchObject({ jobId: 'first', steps: 2 })
    expect(Date.parse(firstSummary.startedAt)).not.toBeNaN()
    const firstMetrics = await readFile(join(outDir, 'metrics.jsonl'), 'utf8')
    expect((await metricsLines(join(outDir, 'metrics.jsonl'))).map((l) => l.step), 'every line queued before the end is written').toEqual([0, 1])

    // A second run that is stopped half-way: the first run's summary stays, its metrics are moved aside.
    const second = await startJob(jobConfig(outDir, 'second'))
    await second.step(0)
    expect((await second.coordinator.stop('the test stops it')).ok).toBe(false)
    expect(await readFile(join(outDir, 'summary.json'), 'utf8')).toBe(firstSummaryText)
    expect(await readFile(join(outDir, 'metrics.previous.jsonl'), 'utf8')).toBe(firstMetrics)
    expect((await metricsLines(join(outDir, 'metrics.jsonl'))).map((l) => l.step)).toEqual([0])

    // A third run that finishes replaces the summary.
    const third = await startJob(jobConfig(outDir, 'third'))
    await third.step(0)
    await third.finish(1)
    expect(await third.coordinator.done).toMatchObject({ ok: true })
    const thirdSummary = JSON.parse(await readFile(join(outDir, 'summary.json'), 'utf8')) as { jobId: string; startedAt: string }
    expect(thirdSummary).toMatchObject({ jobId: 'third', steps: 1 })
    expect(Date.parse(thirdSummary.startedAt)).toBeGreaterThanOrEqual(Date.parse(firstSummary.startedAt))
    expect((await readdir(outDir)).sort()).toEqual(['.ringtrain-out', 'metrics.jsonl', 'metrics.previous.jsonl', 'summary.json'])
  })
})

describe('decide on a failed output write', () => {
  test('fails the job: an Abort carrying the OutputWriteError to every worker, and a fail action with exit code 1', () => {
    const config = jobConfig('out')
    const error = { name: 'OutputWriteError', code: 'E_OUTPUT' as const, message: 'could not write step 3 of the metrics to out/metrics.jsonl: ENOSPC (the disk is full).', context: { path: 'out/metrics.jsonl', got: 'ENOSPC' } }
    const joined = decide(initialState(config), { kind: 'join', from: 'w1', message: controlMessage(MessageType.JoinRequest, config.jobId, { host: 'h', pid: 1, dataEndpoints: [], backend: 'cpu' }) }, 0).state
    const { state, actions } = decide(joined, { kind: 'outputFailed', error }, 10)
    expect(state.phase).toBe('failed')
    expect(actions).toContainEqual(expect.objectContaining({ kind: 'fail', exitCode: 1, error }))
    expect(actions).toContainEqual(expect.objectContaining({ kind: 'broadcast', to: ['w1'], message: expect.objectContaining({ type: MessageType.Abort, error }) }))
  })
})
