/**
 * Batch-norm moving statistics are buffers each rank updates from its own batches. Workers
 * broadcast rank 0's after every step (DDP's broadcast_buffers=True), so replicas of a model
 * with batch norm end bitwise identical too.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, onTestFinished, test } from 'vitest'
import { readSavedWeights } from '../helpers/saved-weights.js'
import { cliTestTimeout, repoRoot, runCli } from '../helpers/run-cli.js'

test('a model with batch normalization ends with identical replicas on 3 workers', async () => {
  const out = mkdtempSync(join(tmpdir(), 'ringtrain-batch-norm-'))
  onTestFinished(() => rmSync(out, { recursive: true, force: true }))
  const run = await runCli(['launch', '-n', '3', join(repoRoot, 'test/integration/fixtures/batch-norm-task.ts'), '--backend', 'cpu', '--out', out, '--quiet'])
  expect(run.code, run.output).toBe(0)
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))
  expect(summary.workers).toBe(3)
  expect(summary.replicasIdentical, `parameter hashes ${summary.parameterHashes.join(', ')}`).toBe(true)
  // The statistics did move from their initial values (mean 0, variance 1): identical
  // replicas are not identical merely because nothing was updated.
  const weights = readSavedWeights(join(out, 'model'))
  const movingMean = [...weights.entries()].find(([name]) => name.endsWith('moving_mean'))?.[1]
  expect(movingMean, `saved weights: ${[...weights.keys()].join(', ')}`).toBeDefined()
  expect(movingMean!.some((m) => Math.abs(m) > 1e-3)).toBe(true)
}, cliTestTimeout())
