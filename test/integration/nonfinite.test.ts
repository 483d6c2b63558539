/**
 * Non-finite gradients and replica checks in real jobs (2 worker processes over ZeroMQ):
 * a task whose loss is NaN at a chosen step on a chosen rank stops the job naming both
 * (`--on-nonfinite stop`, the default), or is skipped by every rank and counted
 * (`--on-nonfinite skip`) with replicas still identical; a rank whose weights drift is
 * caught by `--check-replicas-every`, which names it and the first differing tensor.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, onTestFinished, test } from 'vitest'
import { cliTestTimeout, isAlive, repoRoot, runCli } from '../helpers/run-cli.js'

const task = join(repoRoot, 'test/integration/fixtures/nonfinite-task.ts')

function outDir(): string {
  const out = mkdtempSync(join(tmpdir(), 'ringtrain-nonfinite-'))
  onTestFinished(() => rmSync(out, { recursive: true, force: true }))
  return out
}

function workerPids(output: string): number[] {
  return [...output.matchAll(/started worker \d \(pid (\d+)\)/g)].map((m) => Number(m[1]))
}

test('--on-nonfinite stop (the default): NaN on rank 1 at step 2 fails the job naming the step, the rank and the tensor', async () => {
  const out = outDir()
  const run = await runCli(['launch', '-n', '2', task, '--backend', 'cpu', '--out', out, '--quiet'], {
    env: { RINGTRAIN_TEST_NAN_STEP: '2', RINGTRAIN_TEST_NAN_RANK: '1' },
  })
  expect(run.code, run.output).toBe(1)
  const named = /non-finite gradient at step 2: the local gradient of rank 1 \(first in tensor 'hidden\/kernel'\) held NaN or Inf; stopping the job/
  expect(run.output).toMatch(new RegExp(`\\[coordinator\\] rank \\d \\(pid \\d+ on [^)]+\\) failed: NonFiniteGradientError \\[E_NONFINITE\\]: ${named.source}`))
  expect(run.output).toMatch(new RegExp(`\\[launcher\\] job \\w+ failed: ${named.source}`))
  // Every rank stopped at the same step: none trained past it.
  const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l).step)
  expect(steps).toEqual([0, 1])
  for (const pid of workerPids(run.output)) expect(isAlive(pid), `pid ${pid} is gone`).toBe(false)
}, cliTestTimeout())

test('--on-nonfinite skip: every rank skips step 2, the count reaches metrics and summary, replicas stay identical', async () => {
  const out = outDir()
  const run = await runCli(['launch', '-n', '2', task, '--backend', 'cpu', '--out', out, '--quiet', '--on-nonfinite', 'skip', '--check-replicas-every', '2'], {
    env: { RINGTRAIN_TEST_NAN_STEP: '2', RINGTRAIN_TEST_NAN_RANK: '1' },
  })
  expect(run.code, run.output).toBe(0)
  for (const worker of [0, 1]) expect(run.output).toMatch(new RegExp(`\\[worker ${worker}\\].*skips optimizer step 2 on every rank: the local gradient of rank 1 \\(first in tensor 'hidden/kernel'\\) held NaN or Inf; 1 step\\(s\\) skipped so far`))
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))
  expect(summary).toMatchObject({ workers: 2, steps: 8, skippedSteps: 1, replicasIdentical: true })
  expect(Number.isFinite(summary.finalLoss), `final loss ${summary.finalLoss}`).toBe(true)
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  expect(lines.map((l) => l.skippedSteps)).toEqual([0, 0, 1, 1, 1, 1, 1, 1])
}, cliTestTimeout())

test('--check-replicas-every 2: a replica that drifts at step 3 stops the job after step 3, naming its rank and tensor', async () => {
  const out = outDir()
  const run = await runCli(['launch', '-n', '2', task, '--backend', 'cpu', '--out', out, '--quiet', '--check-replicas-every', '2'], {
    env: { RINGTRAIN_TEST_PERTURB_STEP: '3', RINGTRAIN_TEST_PERTURB_RANK: '1' },
  })
  expect(run.code, run.output).toBe(1)
  const named = /replicas differ after step 3: rank 1 \(hash [0-9a-f]{16}, first differing tensor 'output\/bias'\) differs from rank 0 \(hash [0-9a-f]{16}\); stopping the job/
  expect(run.output).toMatch(new RegExp(`\\[coordinator\\] rank \\d \\(pid \\d+ on [^)]+\\) failed: ReplicaMismatchError \\[E_REPLICA_MISMATCH\\]: ${named.source}`))
  expect(run.output).toMatch(new RegExp(`\\[launcher\\] job \\w+ failed: ${named.source}`))
  for (const pid of workerPids(run.output)) expect(isAlive(pid), `pid ${pid} is gone`).toBe(false)
}, cliTestTimeout())
