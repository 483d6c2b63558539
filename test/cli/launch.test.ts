/** The `ringtrain` command as a user runs it: examples end to end, flags, and signals. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, onTestFinished, test } from 'vitest'
import * as tf from '@tensorflow/tfjs'
import { loadSavedLayersModel, readSavedWeights } from '../helpers/saved-weights.js'
import { cliTestTimeout, isAlive, repoRoot, runCli, startCli, waitForExit, waitForOutput } from '../helpers/run-cli.js'

function tempOut(): string {
  const out = mkdtempSync(join(tmpdir(), 'ringtrain-cli-'))
  onTestFinished(() => rmSync(out, { recursive: true, force: true }))
  return out
}

describe('ringtrain launch', () => {
  test('trains examples/linear-regression with 2 workers: summary, metrics and a model that learned y = 3x + 2', async () => {
    const out = tempOut()
    const run = await runCli(['launch', '-n', '2', 'examples/linear-regression', '--out', out, '--quiet'])
    expect(run.code, run.output).toBe(0)
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))
    expect(summary).toMatchObject({ workers: 2, epochs: 10, replicasIdentical: true })
    expect(summary.steps).toBe(160) // 1024 samples / 2 ranks / batch 32 = 16 steps × 10 epochs
    expect(summary.eval.mse).toBeLessThan(0.01)
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    expect(lines).toHaveLength(160)
    expect(Object.keys(lines[0]).sort()).toEqual(expect.arrayContaining(['step', 'epoch', 'loss', 'samplesPerSecond', 'computeMs', 'allReduceMs', 'bytesSent']))
    const weights = [...readSavedWeights(join(out, 'model')).values()]
    expect(weights[0]![0]).toBeCloseTo(3, 1) // slope
    expect(weights[1]![0]).toBeCloseTo(2, 1) // intercept
    // OUT/model is standard tfjs format: tf.loadLayersModel reads it and predicts 3·0.5 + 2.
    const model = await loadSavedLayersModel(join(out, 'model'))
    const prediction = (model.predict(tf.tensor2d([[0.5]])) as tf.Tensor).dataSync()[0]
    expect(prediction).toBeCloseTo(3.5, 1)
  }, cliTestTimeout())

  test('--lr sets the base rate of the task\'s schedule, and metrics.jsonl records the rate each step used', async () => {
    const out = tempOut()
    // The task: warm-up over 2 steps, then 0.1 halved every 3 steps. --lr 0.2 doubles every rate.
    const run = await runCli(['launch', '-n', '2', 'test/cli/fixtures/scheduled-task.ts', '--lr', '0.2', '--max-steps', '8', '--backend', 'cpu', '--out', out, '--quiet'])
    expect(run.code, run.output).toBe(0)
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; learningRate: number })
    expect(lines.map((l) => l.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect(lines.map((l) => l.learningRate)).toEqual([0.1, 0.2, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1])
  }, cliTestTimeout())

  test('SIGTERM to the launcher stops every worker and exits 143', async () => {
    const out = tempOut()
    const run = startCli(['launch', '-n', '2', 'examples/mnist-mlp', '--backend', 'cpu', '--out', out])
    // Wait until a worker has started training (both pids are in the launcher's log by then).
    await waitForOutput(run, /trains \d+ epoch/)
    const pids = [...run.output().matchAll(/started worker \d+ \(pid (\d+)\)/g)].map((m) => Number(m[1]))
    expect(pids, run.output()).toHaveLength(2)
    run.child.kill('SIGTERM')
    const exit = await waitForExit(run)
    expect(exit.code, run.output()).toBe(143)
    for (const pid of pids) expect(isAlive(pid), `worker pid ${pid} is gone`).toBe(false)
  }, cliTestTimeout(undefined, 2))

  test('--gpus-per-node gives each local worker one device through CUDA_VISIBLE_DEVICES', async () => {
    const out = tempOut()
    const run = await runCli(['launch', '-n', '3', 'examples/linear-regression', '--gpus-per-node', '2', '--backend', 'cpu', '--epochs', '1', '--out', out, '--quiet'])
    expect(run.code, run.output).toBe(0)
    // More workers than cores (CI has 2) is allowed, with one warning; up to the core count, none.
    const warnings = run.output.match(/warning: -n 3 starts more workers than this machine has CPU cores \(\d+\)/g) ?? []
    expect(warnings).toHaveLength(availableParallelism() < 3 ? 1 : 0)
    // Local ranks 0, 1, 2 on 2 GPUs: devices 0, 1, 0.
    for (const [worker, device] of [[0, 0], [1, 1], [2, 0]]) {
      expect(run.output).toMatch(new RegExp(`\\[worker ${worker}\\] .*computes on backend cpu .*with CUDA_VISIBLE_DEVICES=${device}; self-test passed`))
    }
  }, cliTestTimeout())

  test('ringtrain --version prints the installed version', async () => {
    const { version } = JSON.parse(readFileSync(join(repoRoot, 'packages/cli/package.json'), 'utf8')) as { version: string }
    const run = await runCli(['--version'])
    expect(run.code).toBe(0)
    expect(run.output.trim()).toBe(version)
    expect(version).toMatch(/^\d+\.\d+\.\d+/)
  }, cliTestTimeout())

  test('bad flags name the flag and the rule, exit code 2', async () => {
    const zero = await runCli(['launch', '-n', '0', 'examples/linear-regression'])
    expect(zero.code).toBe(2)
    expect(zero.output).toContain('-n/--workers must be an integer ≥ 1; got 0.')
    const typed = await runCli(['launch', '-n', 'abc', 'examples/linear-regression'])
    expect(typed.code).toBe(2)
    expect(typed.output).toContain("-n/--workers must be an integer ≥ 1; got 'abc' (not a number).")
    const epochs = await runCli(['launch', '-n', '1', 'examples/linear-regression', '--epochs=two'])
    expect(epochs.output).toContain("--epochs must be a positive integer; got 'two' (not a number).")
    const lr = await runCli(['launch', '-n', '1', 'examples/linear-regression', '--lr', '-1'])
    expect(lr.code).toBe(2)
    expect(lr.output).toContain('ConfigError [E_CONFIG]: --lr must be a positive number; got -1.')
    const missing = await runCli(['launch', '-n', '1', 'examples/nope'])
    expect(missing.code).toBe(2)
    expect(missing.output).toMatch(/ConfigError \[E_CONFIG\]: TASK 'examples\/nope' does not exist/)
  }, cliTestTimeout(undefined, 3))
})
