/**
 * A worker that dies mid-training stops the job: the launcher exits non-zero with a message
 * naming the lost rank, and the surviving worker stops too (recovery is a later feature).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, onTestFinished, test } from 'vitest'
import { cliTestTimeout, isAlive, startCli, waitForExit, waitForOutput } from '../helpers/run-cli.js'

test('SIGKILL of rank 1 mid-training fails the job naming rank 1, and leaves no process behind', async () => {
  const out = mkdtempSync(join(tmpdir(), 'ringtrain-failure-'))
  onTestFinished(() => rmSync(out, { recursive: true, force: true }))
  // An earlier run's summary stays until a run of its own replaces it (docs/design.md,
  // "Output files and write errors"): a failed run writes none, and removes none.
  writeFileSync(join(out, 'summary.json'), '{"stale":true}')
  const run = startCli(['launch', '-n', '2', 'examples/mnist-mlp', '--out', out, '--quiet'])
  await waitForOutput(run, /\[worker 1\].*trains \d+ epoch/)
  const pids = [...run.output().matchAll(/started worker (\d) \(pid (\d+)\)/g)].map((m) => Number(m[2]))
  expect(pids, run.output()).toHaveLength(2)
  process.kill(pids[1]!, 'SIGKILL')
  const exit = await waitForExit(run)
  expect(exit.code, run.output()).toBe(1)
  expect(run.output()).toMatch(new RegExp(`rank 1 \\(pid ${pids[1]} on [^)]+\\) was killed by SIGKILL before reporting done; stopping the job\\. Elastic mode is off \\(--min-workers\\)\\.`))
  expect(run.output()).toContain('[worker 0] [rank 0/2')
  expect(run.output()).toMatch(/\[worker 0\].*stopped: rank 1 \(pid \d+ on [^)]+\) was killed by SIGKILL before reporting done/)
  for (const pid of pids) expect(isAlive(pid), `pid ${pid} is gone`).toBe(false)
  expect(readFileSync(join(out, 'summary.json'), 'utf8'), 'a failed job writes no summary.json and keeps the earlier one').toBe('{"stale":true}')
  expect(existsSync(join(out, 'metrics.jsonl'))).toBe(true)
}, cliTestTimeout(undefined, 2))
