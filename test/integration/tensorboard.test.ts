/**
 * `--tensorboard DIR`: the event file is read back by an independent reader
 * (fixtures/read-tfevents.py: Debian's python3-protobuf with descriptors built there, its own
 * CRC-32C), never by ringtrain's writer, and every step's scalars equal metrics.jsonl's.
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { beforeAll, expect, test } from 'vitest'
import { cliTestTimeout, repoRoot, runCli } from '../helpers/run-cli.js'
import { tempDir } from '../helpers/temp-dir.js'

beforeAll(() => {
  execFileSync(join(repoRoot, 'scripts/ensure-debian-packages.sh'), ['python3-protobuf'], { stdio: 'pipe' })
}, 300_000)

test('the scalars of every step and the final evaluation, readable by a TensorBoard event reader', async () => {
  const dir = tempDir('ringtrain-tensorboard-')
  const run = await runCli(['launch', '-n', '2', 'examples/linear-regression', '--backend', 'cpu', '--epochs', '2', '--quiet', '--out', join(dir, 'out'), '--tensorboard', join(dir, 'tb')])
  expect(run.code, run.output).toBe(0)
  const files = readdirSync(join(dir, 'tb'))
  expect(files).toHaveLength(1)
  expect(files[0]).toMatch(/^events\.out\.tfevents\.\d+\.\S+\.ringtrain$/)
  // Debian's own Python, not a user's (pyenv and such may lack python3-protobuf).
  const records = execFileSync('/usr/bin/python3', [join(repoRoot, 'test/integration/fixtures/read-tfevents.py'), join(dir, 'tb', files[0]!)], { encoding: 'utf8' })
    .trim().split('\n').map((line) => JSON.parse(line) as { step: number; file_version?: string; scalars: Record<string, number> })
  expect(records[0]!.file_version).toBe('brain.Event:2')
  const metrics = readFileSync(join(dir, 'out', 'metrics.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { step: number; loss: number; learningRate: number })
  const steps = records.slice(1, -1)
  expect(steps.map((r) => r.step)).toEqual(metrics.map((m) => m.step))
  for (const [i, m] of metrics.entries()) {
    expect(steps[i]!.scalars['train/loss']).toBe(Math.fround(m.loss))
    expect(steps[i]!.scalars['train/learning_rate']).toBe(Math.fround(m.learningRate))
    expect(Object.keys(steps[i]!.scalars).sort()).toEqual(['perf/allreduce_ms', 'perf/compute_ms', 'perf/samples_per_second', 'train/learning_rate', 'train/loss'])
  }
  const summary = JSON.parse(readFileSync(join(dir, 'out', 'summary.json'), 'utf8')) as { steps: number; eval: Record<string, number> }
  const last = records.at(-1)!
  expect(last.step).toBe(summary.steps)
  expect(last.scalars['eval/mse']).toBe(Math.fround(summary.eval['mse']!))
}, cliTestTimeout())
