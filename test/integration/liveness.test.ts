/**
 * Liveness does not depend on step length: a worker's liveness thread says it is alive while
 * its main thread computes one long synchronous step. A stopped process (SIGSTOP stops every
 * thread) is still declared lost.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, onTestFinished, test } from 'vitest'
import { cliTestTimeout, repoRoot, startCli, waitForExit, waitForOutput } from '../helpers/run-cli.js'
import { slack } from '../helpers/slack.js'

const heartbeatIntervalMs = 100
// 0.5 s of silence on an idle machine; the busy step below is always 6 times that.
const heartbeatMaxMissed = Math.ceil(5 * slack)
const limitMs = heartbeatIntervalMs * heartbeatMaxMissed
const busyMs = 6 * limitMs
const heartbeatArgs = ['--heartbeat-interval-ms', String(heartbeatIntervalMs), '--heartbeat-max-missed', String(heartbeatMaxMissed)]

function outDir(): string {
  const out = mkdtempSync(join(tmpdir(), 'ringtrain-liveness-'))
  onTestFinished(() => rmSync(out, { recursive: true, force: true }))
  return out
}

test(`a step that blocks the main thread for 6 × heartbeatIntervalMs × heartbeatMaxMissed: the job finishes and nobody is declared lost`, async () => {
  const run = startCli(['launch', '-n', '2', join(repoRoot, 'test/integration/fixtures/long-step-task.ts'), '--backend', 'cpu', '--out', outDir(), '--quiet', ...heartbeatArgs], { env: { RINGTRAIN_TEST_BUSY_MS: String(busyMs) } })
  const exit = await waitForExit(run)
  const output = run.output()
  expect(output.match(/busy step starts/g), output).toHaveLength(2)
  expect(output).not.toMatch(/missed \d+ heartbeats|heard nothing from the coordinator/)
  // Bound while waiting (`pid N on HOST`) or once it has a rank (`rank R (pid N on HOST)`): both threads.
  expect(output.match(/(rank \d \()?pid \d+ on [^)\s]+\)? reports its liveness from a thread of its own/g), output).toHaveLength(2)
  expect(exit.code, output).toBe(0)
}, cliTestTimeout())

test('a SIGSTOPped worker is still declared lost: the job fails naming its rank', async () => {
  const run = startCli(['launch', '-n', '2', 'examples/mnist-mlp', '--backend', 'cpu', '--out', outDir(), '--quiet', ...heartbeatArgs])
  await waitForOutput(run, /\[worker 1\].*trains \d+ epoch/)
  const pids = [...run.output().matchAll(/started worker (\d) \(pid (\d+)\)/g)].map((m) => Number(m[2]))
  expect(pids, run.output()).toHaveLength(2)
  process.kill(pids[1]!, 'SIGSTOP')
  onTestFinished(() => { try { process.kill(pids[1]!, 'SIGKILL') } catch { /* gone */ } })
  await waitForOutput(run, /rank 1 \(pid \d+ on [^)]+\) missed \d+ heartbeats/)
  process.kill(pids[1]!, 'SIGCONT')
  const exit = await waitForExit(run)
  expect(exit.code, run.output()).toBe(1)
  expect(run.output()).toMatch(new RegExp(`rank 1 \\(pid ${pids[1]} on [^)]+\\) missed \\d+ heartbeats \\(last one \\d+\\.\\d s ago\\); stopping the job\\. Elastic mode is off \\(--min-workers\\)\\. Neither its liveness thread nor its main thread was heard`))
}, cliTestTimeout())
