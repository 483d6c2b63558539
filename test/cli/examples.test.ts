/**
 * Every example runs as a user would run it (`ringtrain launch -n 2 examples/<name>`) on
 * the default backend, over real processes and ZeroMQ. The conv net is cut short with
 * --max-steps (the CI short-circuit); the others run their full schedule.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, onTestFinished, test } from 'vitest'
import { cliTestTimeout, runCli } from '../helpers/run-cli.js'
import { scaled } from '../helpers/slack.js'

// One example's launch: 15–40 s on an idle 2-core machine, up to about 60 s beside two CPU
// hogs (past vitest's default 60 s timeout, which is why these tests set their own).
const launchDeadlineMs = scaled(180_000)
const timeout = cliTestTimeout(launchDeadlineMs)

async function launchExample(name: string, extra: string[] = []) {
  const out = mkdtempSync(join(tmpdir(), `ringtrain-${name}-`))
  onTestFinished(() => rmSync(out, { recursive: true, force: true }))
  const run = await runCli(['launch', '-n', '2', `examples/${name}`, '--out', out, '--quiet', ...extra], { timeoutMs: launchDeadlineMs })
  expect(run.code, run.output).toBe(0)
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss: number })
  expect(summary.replicasIdentical).toBe(true)
  expect(summary.backends).toEqual(['wasm', 'wasm'])
  return { summary, lines }
}

/** Mean loss of the first and last `n` steps: training must have lowered it. */
function lossDropped(lines: { loss: number }[], n = 10): [number, number] {
  const mean = (xs: { loss: number }[]) => xs.reduce((s, l) => s + l.loss, 0) / xs.length
  return [mean(lines.slice(0, n)), mean(lines.slice(-n))]
}

test('mnist-mlp (the README main job) reaches at least 0.90 eval accuracy on held-out digits', async () => {
  const { summary } = await launchExample('mnist-mlp')
  expect(summary.eval.accuracy).toBeGreaterThanOrEqual(0.9)
}, timeout)

test('mnist-cnn trains on wasm thanks to the kernel pack', async () => {
  const { lines } = await launchExample('mnist-cnn', ['--max-steps', '40'])
  expect(lines).toHaveLength(40)
  const [first, last] = lossDropped(lines)
  expect(last).toBeLessThan(first * 0.8)
}, timeout)

test('custom-model (raw variables, a custom loss) fits sin(3x)', async () => {
  const { summary } = await launchExample('custom-model')
  expect(summary.eval.mse).toBeLessThan(0.02)
}, timeout)

test('text-embedding trains an embedding layer on wasm', async () => {
  const { summary } = await launchExample('text-embedding')
  expect(summary.eval.accuracy).toBeGreaterThanOrEqual(0.85)
}, timeout)
