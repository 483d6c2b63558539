/** A model that differs on one rank fails before step 0, naming the tensor, both shapes and both ranks. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, onTestFinished, test } from 'vitest'
import { repoRoot, runCli } from '../helpers/run-cli.js'

test('a model that differs on rank 1 fails the job before step 0', async () => {
  const out = mkdtempSync(join(tmpdir(), 'ringtrain-mismatch-'))
  onTestFinished(() => rmSync(out, { recursive: true, force: true }))
  const run = await runCli(['launch', '-n', '2', join(repoRoot, 'test/integration/fixtures/mismatched-model.ts'), '--backend', 'cpu', '--out', out, '--quiet'])
  expect(run.code).toBe(1)
  expect(run.output).toContain("rank 1's model differs from rank 0's at tensor 'hidden/kernel': rank 0 has shape [4,8], rank 1 has [4,9]. Every rank must build the same model.")
  expect(run.output).not.toMatch(/"step":0/)
})
