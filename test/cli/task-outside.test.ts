/**
 * A user's task lives in their own folder, not in this repo: it imports @ringtrain/worker
 * and @tensorflow/tfjs, which resolve to the worker's own copies (one tfjs engine).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, onTestFinished, test } from 'vitest'
import { cliTestTimeout, runCli } from '../helpers/run-cli.js'

const task = `
import { arrayDataset, defineTask } from '@ringtrain/worker'
import * as tf from '@tensorflow/tfjs'
const inputs = Float32Array.from({ length: 256 }, (_, i) => i / 256)
export default defineTask({
  model: () => tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] }),
  loss: 'meanSquaredError', optimizer: 'sgd', learningRate: 0.5, epochs: 4,
  data: { train: () => arrayDataset({ inputs, inputShape: [1], targets: inputs.map((x) => 2 * x), targetShape: [1] }) },
})
`

function userFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringtrain-user-'))
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

test('a .mts task outside the repo trains with the worker\'s packages', async () => {
  const dir = userFolder()
  writeFileSync(join(dir, 'my-task.mts'), task)
  const run = await runCli(['launch', '-n', '2', join(dir, 'my-task.mts'), '--out', join(dir, 'out'), '--quiet'])
  expect(run.code, run.output).toBe(0)
  expect(JSON.parse(readFileSync(join(dir, 'out', 'summary.json'), 'utf8'))).toMatchObject({ workers: 2, replicasIdentical: true })
}, cliTestTimeout())

test('a CommonJS-scoped .ts task outside the repo fails with a hint to make it an ES module', async () => {
  const dir = userFolder()
  writeFileSync(join(dir, 'my-task.ts'), task)
  const run = await runCli(['launch', '-n', '2', join(dir, 'my-task.ts'), '--out', join(dir, 'out'), '--quiet'])
  expect(run.code).toBe(1)
  expect(run.output).toContain("could not be imported: Cannot find module '@ringtrain/worker'")
  expect(run.output).toContain('Task modules are ES modules: name the file .mts (or .mjs), or put a package.json with "type": "module" beside it.')
}, cliTestTimeout())

test('a syntax error in a plain .mjs task names the file, line and column, the message and the line (Node\'s own parser)', async () => {
  const dir = userFolder()
  const file = join(dir, 'broken.mjs')
  writeFileSync(file, "import { defineTask } from '@ringtrain/worker'\nexport default defineTask({\n  epochs: 1,,\n})\n")
  const run = await runCli(['launch', '-n', '1', file, '--out', join(dir, 'out'), '--quiet', '--backend', 'cpu'])
  expect(run.code).toBe(1)
  expect(run.output).toContain(`task '${file}' could not be imported: ${file}:3:13: Unexpected token ',' (line 3: epochs: 1,,)`)
}, cliTestTimeout())
