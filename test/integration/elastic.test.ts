/**
 * Elastic rounds with real processes (test/integration/fixtures/recovery-task.ts, one epoch
 * of 240 samples, batch 4): a worker killed with SIGKILL, and a worker that joins late.
 */
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { expect, test } from 'vitest'
import { cliTestTimeout, runCli, startCli, waitForExit, waitForOutput } from '../helpers/run-cli.js'
import { testKeyFile } from '../helpers/test-key.js'
import { tempDir } from '../helpers/temp-dir.js'

const task = 'test/integration/fixtures/recovery-task.ts'
const job = ['--backend', 'cpu', '--seed', '7', '--epochs', '1']

interface Summary {
  workers: number
  steps: number
  replicasIdentical: boolean
  eval: { accuracy: number }
  rounds: { round: number; worldSize: number; firstStep?: number; why: string; members: string[] }[]
  lost?: { rank: number; round: number; pid: number }[]
}
/** A TCP port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

const summaryOf = (out: string) => JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary

/** Every sample index the task's batches asked for, over all processes that logged into `dir`. */
function samplesSeen(dir: string): number[] {
  return readdirSync(dir).flatMap((f) => readFileSync(join(dir, f), 'utf8').trim().split('\n').filter(Boolean).map(Number))
}

test('kill -9 of one of 3 workers with --min-workers 2: the job finishes with 2 in a second round, replicas identical, accuracy as undisturbed, every sample trained once apart from the abandoned step', async () => {
  const reference = tempDir('ringtrain-elastic-ref-')
  const undisturbed = await runCli(['launch', '-n', '3', task, ...job, '--quiet', '--out', reference])
  expect(undisturbed.code, undisturbed.output).toBe(0)

  const out = tempDir('ringtrain-elastic-kill-')
  const samples = tempDir('ringtrain-elastic-samples-')
  const run = startCli(['launch', '-n', '3', task, ...job, '--quiet', '--out', out, '--min-workers', '2', '--max-restarts', '0', '--checkpoint-every', '3'], { env: { RINGTRAIN_TEST_STEP_MS: '150', RINGTRAIN_TEST_SAMPLE_LOG: samples } })
  // Mid-epoch (20 steps): once the checkpoint of step 3 is written.
  await waitForOutput(run, /committed checkpoint \S+step-0000003 /)
  const victim = Number(/started worker 2 \(pid (\d+)\)/.exec(run.output())![1])
  process.kill(victim, 'SIGKILL')
  const exit = await waitForExit(run)
  expect(exit.code, run.output()).toBe(0)

  const summary = summaryOf(out)
  expect(summary.workers).toBe(2)
  expect(summary.replicasIdentical).toBe(true)
  expect(summary.rounds.map((r) => [r.round, r.worldSize])).toEqual([[0, 3], [1, 2]])
  expect(summary.rounds[1]!.why).toMatch(/^rank 2 \(pid \d+ on \S+\) was lost$/)
  expect(summary.lost).toMatchObject([{ rank: 2, round: 0, pid: victim }])
  expect(Math.abs(summary.eval.accuracy - summaryOf(reference).eval.accuracy), `accuracy ${summary.eval.accuracy} against ${summaryOf(reference).eval.accuracy} undisturbed`).toBeLessThanOrEqual(0.01)

  // Round 0 consumed the first (firstStep of round 1) × 12 samples of the epoch's order, round
  // 1 the rest: every sample at least once; twice only for the abandoned step's batch (≤ 12).
  const counts = new Map<number, number>()
  for (const index of samplesSeen(samples)) counts.set(index, (counts.get(index) ?? 0) + 1)
  expect([...counts.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 240 }, (_, i) => i))
  const twice = [...counts.entries()].filter(([, n]) => n > 1)
  expect(twice.every(([, n]) => n === 2), JSON.stringify(twice)).toBe(true)
  expect(twice.length).toBeLessThanOrEqual(12)
}, cliTestTimeout(undefined, 2))

test('a fourth worker joins a running elastic job at a step boundary and trains from the next round', async () => {
  const out = tempDir('ringtrain-elastic-join-')
  const key = testKeyFile()
  const coordinator = startCli(['coordinator', task, '-n', '3', '--bind', 'tcp://127.0.0.1:0', '--job-id', 'grow', '--secret-file', key, ...job, '--out', out, '--min-workers', '2', '--max-workers', '4'])
  const endpoint = /waits for 3 worker\(s\) on (tcp:\/\/127\.0\.0\.1:\d+)/.exec(await waitForOutput(coordinator, /waits for 3 worker\(s\) on tcp:\/\/127\.0\.0\.1:\d+/))![1]!
  // The job is held (every batch waits) until the late worker joined: it cannot end first.
  const hold = join(tempDir('ringtrain-elastic-hold-'), 'hold')
  writeFileSync(hold, '')
  const env = { RINGTRAIN_TEST_STEP_MS: '150', RINGTRAIN_TEST_HOLD_FILE: hold }
  const worker = (flags: string[] = []) => startCli(['worker', '--coordinator', endpoint, '--job-id', 'grow', '--secret-file', key, ...flags], { env })
  // The first worker's data port is fixed (a firewall opens only it): it binds it again for round 1.
  const dataPort = await freePort()
  const first = [worker(['--transport', 'tcp', '--data-port', String(dataPort)]), worker(), worker()]
  await waitForOutput(coordinator, /Round 0 starts with 3 workers/)
  await Promise.all(first.map((w) => waitForOutput(w, /trains 1 epoch/)))
  const late = worker()
  await waitForOutput(coordinator, /joined the running job; the workers take it in at the next step boundary/)
  rmSync(hold)
  await waitForOutput(late, /joined round 1 of job "grow" as rank 3 in a world of 4/)
  const exits = await Promise.all([coordinator, ...first, late].map((p) => waitForExit(p)))
  expect(exits.map((e) => e.code), coordinator.output()).toEqual([0, 0, 0, 0, 0])
  const summary = summaryOf(out)
  expect(summary.rounds.map((r) => [r.round, r.worldSize])).toEqual([[0, 3], [1, 4]])
  expect(summary.rounds[1]!.why).toMatch(/^pid \d+ on \S+ joined$/)
  expect(summary.rounds[1]!.firstStep).toBeGreaterThan(0)
  expect(summary).toMatchObject({ workers: 4, replicasIdentical: true })
  expect(late.output()).toMatch(/takes rank 0's state: step [1-9]\d*, epoch 0\./)
  expect(first[0]!.output()).toContain(`listens for its ring peers on tcp://127.0.0.1:${dataPort}, with the job key`)
  expect(first[0]!.output()).toContain(`listens for its ring peers again on tcp://127.0.0.1:${dataPort}, for the next round.`)
  expect(coordinator.output()).toMatch(/joined the running job; the workers take it in at the next step boundary/)
}, cliTestTimeout(undefined, 2))

test('below --min-workers for --elastic-timeout-ms: the survivors checkpoint in a last round, and the job fails naming the lost rank and the resume command', async () => {
  const out = tempDir('ringtrain-elastic-below-')
  const run = startCli(['launch', '-n', '3', task, ...job, '--quiet', '--out', out, '--min-workers', '3', '--max-restarts', '0', '--elastic-timeout-ms', '1500', '--checkpoint-every', '3'], { env: { RINGTRAIN_TEST_STEP_MS: '150' } })
  await waitForOutput(run, /committed checkpoint \S+step-0000003 /)
  const victim = Number(/started worker 1 \(pid (\d+)\)/.exec(run.output())![1])
  process.kill(victim, 'SIGKILL')
  const exit = await waitForExit(run)
  expect(exit.code, run.output()).toBe(1)
  expect(run.output()).toMatch(new RegExp(`only 2 worker\\(s\\) left, fewer than --min-workers 3, for 1\\.5 s; stopping the job\\. Lost: rank 1 of round 0 \\(pid ${victim} on \\S+\\)\\. Continue from the newest checkpoint with \`ringtrain launch --resume ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary & { checkpoint: { step: number; dir: string } }
  // The last round's checkpoint is of the step it stopped after, beyond the periodic ones.
  expect(summary.rounds.map((r) => [r.round, r.worldSize])).toEqual([[0, 3], [1, 2]])
  expect(summary.checkpoint.step).toBe(summary.steps)
  expect(readFileSync(join(summary.checkpoint.dir, 'manifest.json'), 'utf8')).toContain(`"step": ${summary.steps}`)
}, cliTestTimeout())

test('launch starts a killed worker again (--max-restarts), and the job takes it in: it ends with 3 workers', async () => {
  const out = tempDir('ringtrain-elastic-restart-')
  const hold = join(tempDir('ringtrain-elastic-hold-'), 'hold')
  const run = startCli(['launch', '-n', '3', task, ...job, '--quiet', '--out', out, '--min-workers', '2', '--max-restarts', '1', '--checkpoint-every', '3'], { env: { RINGTRAIN_TEST_STEP_MS: '150', RINGTRAIN_TEST_HOLD_FILE: hold } })
  await waitForOutput(run, /committed checkpoint \S+step-0000003 /)
  const victim = Number(/started worker 2 \(pid (\d+)\)/.exec(run.output())![1])
  // Held (every batch waits) until the restarted worker joined: the job cannot end first.
  writeFileSync(hold, '')
  process.kill(victim, 'SIGKILL')
  await waitForOutput(run, /joined the running job; the workers take it in at the next step boundary/)
  rmSync(hold)
  const exit = await waitForExit(run)
  expect(exit.code, run.output()).toBe(0)
  expect(run.output()).toMatch(new RegExp(`worker 2 \\(pid ${victim}\\) was killed by SIGKILL; starting it again \\(0 restart\\(s\\) left\\)`))
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary
  // Usually [3, 2, 3]: the survivors regroup before the new process is up; on a slow machine
  // it may already wait when they do, and round 1 takes it in at once ([3, 3]).
  const sizes = summary.rounds.map((r) => r.worldSize)
  expect([[3, 2, 3], [3, 3]], JSON.stringify(summary.rounds)).toContainEqual(sizes)
  expect(summary).toMatchObject({ workers: 3, replicasIdentical: true })
}, cliTestTimeout())
