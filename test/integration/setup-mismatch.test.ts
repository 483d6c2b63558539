/**
 * Ranks that disagree fail before step 0 with a message naming what differs and both ranks:
 * the model (first differing tensor, both shapes) or the training data (another row count).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, onTestFinished, test } from 'vitest'
import { cliTestTimeout, repoRoot, runCli } from '../helpers/run-cli.js'

/** Launches 2 workers on a fixture whose local rank 1 differs; returns the run. */
async function launchMismatched(fixture: string) {
  const out = mkdtempSync(join(tmpdir(), 'ringtrain-mismatch-'))
  onTestFinished(() => rmSync(out, { recursive: true, force: true }))
  const run = await runCli(['launch', '-n', '2', join(repoRoot, 'test/integration/fixtures', fixture), '--backend', 'cpu', '--out', out, '--quiet'])
  expect(run.code).toBe(1)
  expect(run.output, 'no step ran').not.toMatch(/"step":0/)
  return run
}

test('a model that differs on rank 1 fails the job before step 0', async () => {
  const run = await launchMismatched('mismatched-model.ts')
  expect(run.output).toContain("rank 1's model differs from rank 0's at tensor 'hidden/kernel': rank 0 has shape [4,8], rank 1 has [4,9]. Every rank must build the same model.")
}, cliTestTimeout())

test('training data with another row count on rank 1 fails the job before step 0', async () => {
  const run = await launchMismatched('mismatched-data.ts')
  expect(run.output).toContain("rank 1's training plan differs from rank 0's: rank 0 has 64 training samples, rank 1 has 63. Every rank must load the same training data with the same options.")
}, cliTestTimeout())
