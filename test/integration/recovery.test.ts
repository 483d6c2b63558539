/**
 * Checkpoints, resume and graceful stop with real processes, real signals and real files
 * (test/integration/fixtures/recovery-task.ts: Adam, 240 samples, batch 4, 2 epochs).
 *
 * The reference is an uninterrupted 2-worker run: a run stopped (Ctrl-C) or killed (kill -9
 * of every process) and resumed with the same world must end with bitwise its parameters.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { cliTestTimeout, isAlive, runCli, startCli, waitForExit, waitForOutput, type CliRun } from '../helpers/run-cli.js'
import { scaled } from '../helpers/slack.js'
import { testKeyFile } from '../helpers/test-key.js'
import { tempDir } from '../helpers/temp-dir.js'

const task = 'test/integration/fixtures/recovery-task.ts'
const job = ['--backend', 'cpu', '--seed', '7']
const common = [...job, '--quiet']

interface Summary {
  steps: number
  parameterHashes: string[]
  replicasIdentical: boolean
  stopped?: string
  checkpoint?: { step: number; dir: string }
}
const summaryOf = (out: string) => JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary

let reference: Promise<Summary> | undefined
/** The uninterrupted run every resumed run must equal (run once per file). */
function uninterrupted(): Promise<Summary> {
  reference ??= (async () => {
    const out = mkdtempSync(join(tmpdir(), 'ringtrain-recovery-ref-'))
    try {
      const run = await runCli(['launch', '-n', '2', task, ...common, '--out', out])
      expect(run.code, run.output).toBe(0)
      return summaryOf(out)
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  })()
  return reference
}

function workerPids(run: CliRun): number[] {
  return [...run.output().matchAll(/started worker \d+ \(pid (\d+)\)/g)].map((m) => Number(m[1]))
}

function checkpointsIn(out: string): string[] {
  return existsSync(join(out, 'checkpoints')) ? readdirSync(join(out, 'checkpoints')).sort() : []
}

describe('checkpoints and resume', () => {
  test('Ctrl-C finishes the step in flight, checkpoints and exits 130; --resume ends bitwise where an uninterrupted run ends', async () => {
    const expected = await uninterrupted()
    const out = tempDir('ringtrain-recovery-stop-')
    // Held (every batch waits) until the stop was asked for: the job cannot end first.
    const hold = join(tempDir('ringtrain-recovery-hold-'), 'hold')
    writeFileSync(hold, '')
    const run = startCli(['launch', '-n', '2', task, ...common, '--out', out], { env: { RINGTRAIN_TEST_STEP_MS: '30', RINGTRAIN_TEST_HOLD_FILE: hold } })
    await waitForOutput(run, /trains 2 epoch/)
    run.child.kill('SIGINT')
    await waitForOutput(run, /Stopping gracefully/)
    rmSync(hold)
    const exit = await waitForExit(run)
    expect(exit.code, run.output()).toBe(130)
    const stopped = summaryOf(out)
    expect(stopped.stopped, run.output()).toContain('SIGINT')
    expect(stopped.replicasIdentical).toBe(true)
    expect(stopped.steps).toBeLessThan(expected.steps)
    // The checkpoint is of the step the job stopped after.
    expect(stopped.checkpoint?.step).toBe(stopped.steps)
    expect(existsSync(join(stopped.checkpoint!.dir, 'manifest.json'))).toBe(true)
    expect(run.output()).toMatch(/stops after step \d+ as asked/)

    const resumed = await runCli(['launch', '-n', '2', task, ...common, '--resume', out])
    expect(resumed.code, resumed.output).toBe(0)
    expect(resumed.output).toContain(`resuming from ${stopped.checkpoint!.dir}`)
    const summary = summaryOf(out)
    expect(summary.steps).toBe(expected.steps)
    expect(summary.parameterHashes).toEqual(expected.parameterHashes)
  }, cliTestTimeout(undefined, 3))

  test('kill -9 of every process after a checkpoint, then --resume: bitwise the uninterrupted run; an interrupted write is ignored and removed', async () => {
    const expected = await uninterrupted()
    const out = tempDir('ringtrain-recovery-kill-')
    const run = startCli(['launch', '-n', '2', task, ...common, '--out', out, '--checkpoint-every', '10', '--keep-checkpoints', '2'], { env: { RINGTRAIN_TEST_STEP_MS: '30' } })
    await waitForOutput(run, /committed checkpoint \S+step-0000010 /)
    const pids = workerPids(run)
    expect(pids).toHaveLength(2)
    run.child.kill('SIGKILL')
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL') } catch { /* gone */ }
    }
    await waitForExit(run)
    // What a crash in the middle of a write leaves: a directory without manifest, a temporary one.
    mkdirSync(join(out, 'checkpoints', 'step-0099999'))
    writeFileSync(join(out, 'checkpoints', 'step-0099999', 'weights.bin'), 'partial')
    mkdirSync(join(out, 'checkpoints', '.step-0000011.tmp-abc'))
    const newestBefore = checkpointsIn(out).filter((n) => n.startsWith('step-') && existsSync(join(out, 'checkpoints', n, 'manifest.json'))).at(-1)!

    const resumed = await runCli(['launch', '-n', '2', task, ...common, '--resume', out, '--checkpoint-every', '10', '--keep-checkpoints', '2'])
    expect(resumed.code, resumed.output).toBe(0)
    expect(resumed.output).toContain(`resuming from ${join(out, 'checkpoints', newestBefore)}`)
    expect(resumed.output).toMatch(/removed \S+step-0099999: an interrupted checkpoint write/)
    expect(summaryOf(out).parameterHashes).toEqual(expected.parameterHashes)
    const left = checkpointsIn(out)
    expect(left).not.toContain('step-0099999')
    expect(left).not.toContain('.step-0000011.tmp-abc')
    // --keep-checkpoints 2: the two newest (the end of the job is one).
    expect(left).toEqual([`step-${String(expected.steps - 10).padStart(7, '0')}`, `step-${String(expected.steps).padStart(7, '0')}`])
  }, cliTestTimeout(undefined, 3))

  test('resumed with 2 workers from a checkpoint of 3 mid-epoch, every sample of the epoch is trained exactly once', async () => {
    const out = tempDir('ringtrain-recovery-resize-')
    const samples = tempDir('ringtrain-recovery-samples-')
    const env = { RINGTRAIN_TEST_SAMPLE_LOG: samples }
    const first = await runCli(['launch', '-n', '3', task, ...common, '--epochs', '1', '--max-steps', '7', '--out', out], { env })
    expect(first.code, first.output).toBe(0)
    const second = await runCli(['launch', '-n', '2', task, ...common, '--epochs', '1', '--resume', out], { env })
    expect(second.code, second.output).toBe(0)
    expect(second.output).toMatch(/resumes epoch 0 with 2 rank\(s\) × batch 4 where 3 × 4 left it: from sample 84 of 240/)
    const seen = readdirSync(samples).flatMap((f) => readFileSync(join(samples, f), 'utf8').trim().split('\n').map(Number))
    expect(seen).toHaveLength(240)
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 240 }, (_, i) => i))
    // 156 samples left: 78 per rank, batches of 4 (the last of 2).
    expect(summaryOf(out)).toMatchObject({ steps: 7 + Math.ceil(78 / 4), replicasIdentical: true })
  }, cliTestTimeout(undefined, 2))

  test('a task that keeps its global batch (onResize) resumes 3 workers × 4 as 2 × 6, and still trains every sample once', async () => {
    const out = tempDir('ringtrain-recovery-global-')
    const samples = tempDir('ringtrain-recovery-global-samples-')
    const env = { RINGTRAIN_TEST_SAMPLE_LOG: samples, RINGTRAIN_TEST_GLOBAL_BATCH: '12' }
    const first = await runCli(['launch', '-n', '3', task, ...common, '--epochs', '1', '--max-steps', '4', '--out', out], { env })
    expect(first.code, first.output).toBe(0)
    const second = await runCli(['launch', '-n', '2', task, ...common, '--epochs', '1', '--resume', out], { env })
    expect(second.code, second.output).toBe(0)
    expect(second.output).toContain(`onResize(3 → 2 ranks): {"batchSize":6,"learningRateScale":1}`)
    expect(second.output).toMatch(/resumes epoch 0 with 2 rank\(s\) × batch 6 where 3 × 4 left it: from sample 48 of 240/)
    const seen = readdirSync(samples).flatMap((f) => readFileSync(join(samples, f), 'utf8').trim().split('\n').map(Number))
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 240 }, (_, i) => i))
    // 192 samples left, 12 per step.
    expect(summaryOf(out)).toMatchObject({ steps: 4 + 16, replicasIdentical: true })
  }, cliTestTimeout(undefined, 2))

  test('a checkpoint of another model fails before step 0, naming the first differing weight', async () => {
    const out = tempDir('ringtrain-recovery-layout-')
    const first = await runCli(['launch', '-n', '1', task, ...common, '--max-steps', '3', '--out', out])
    expect(first.code, first.output).toBe(0)
    const other = await runCli(['launch', '-n', '2', task, ...common, '--resume', out], { env: { RINGTRAIN_TEST_HIDDEN: '9' } })
    expect(other.code, other.output).toBe(1)
    expect(other.output).toMatch(/does not fit the task's model: at weight #0 the checkpoint has 'hidden\/kernel' \[6,\s*8\], the model has 'hidden\/kernel' \[6,\s*9\]/)
    expect(other.output).not.toMatch(/\[rank 0\/2 round 0 step 1\]/)
  }, cliTestTimeout(undefined, 2))

  test('--resume of a folder without checkpoints says where it looked, exit code 2', async () => {
    const out = tempDir('ringtrain-recovery-empty-')
    const run = await runCli(['launch', '-n', '1', task, ...common, '--resume', out])
    expect(run.code, run.output).toBe(2)
    expect(run.output).toContain(`no complete checkpoint in ${join(out, 'checkpoints')}`)
  }, cliTestTimeout())
})

describe('losing the coordinator', () => {
  test('kill -9 of the coordinator: every worker exits non-zero within the keep-alive deadline, naming the newest checkpoint and the resume command', async () => {
    const out = tempDir('ringtrain-recovery-coordinator-')
    const key = testKeyFile()
    const intervalMs = scaled(250)
    const coordinator = startCli(['coordinator', task, '-n', '2', '--bind', 'tcp://127.0.0.1:0', '--job-id', 'lost', '--secret-file', key, ...job, '--out', out,
      '--checkpoint-every', '5', '--heartbeat-interval-ms', String(intervalMs), '--heartbeat-max-missed', '4'])
    const endpoint = /waits for 2 worker\(s\) on (tcp:\/\/127\.0\.0\.1:\d+)/.exec(await waitForOutput(coordinator, /waits for 2 worker\(s\) on tcp:\/\/127\.0\.0\.1:\d+/))![1]!
    // 60 steps of at least 150 ms: the coordinator is gone long before the last one.
    const env = { RINGTRAIN_TEST_STEP_MS: '150' }
    const workers = [0, 1].map(() => startCli(['worker', '--coordinator', endpoint, '--job-id', 'lost', '--secret-file', key], { env }))
    await Promise.race(workers.map((w) => waitForOutput(w, /committed checkpoint \S+step-0000005 /)))
    coordinator.child.kill('SIGKILL')
    const killedAt = Date.now()
    const exits = await Promise.all(workers.map((w) => waitForExit(w, scaled(30_000))))
    expect(exits.map((e) => e.code)).toEqual([1, 1])
    // The deadline is intervalMs × 4 after the last keep-alive; the rest is the step in flight and exit.
    expect(Date.now() - killedAt).toBeLessThan(intervalMs * 4 + scaled(5_000))
    for (const worker of workers) {
      expect(worker.output()).toMatch(new RegExp(`The newest checkpoint is ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/checkpoints/step-\\d{7} \\(step \\d+\\); continue with: ringtrain launch --resume ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))
      expect(worker.output()).not.toMatch(/step 60\]/)
      expect(isAlive(worker.child.pid!)).toBe(false)
    }
  }, cliTestTimeout(undefined, 2))
})
