/**
 * The pieces for multi-host jobs, each its own process as on separate machines:
 * `ringtrain coordinator TASK -n 2 --bind …` and two `ringtrain worker --coordinator …`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect, onTestFinished, test } from 'vitest'
import { cliTestTimeout, runCli, startCli, waitForExit } from '../helpers/run-cli.js'

/** A port that was free a moment ago (the coordinator binds it by number, as users do). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function job(workerArgs: string[][]) {
  const out = mkdtempSync(join(tmpdir(), 'ringtrain-pieces-'))
  onTestFinished(() => rmSync(out, { recursive: true, force: true }))
  const endpoint = `tcp://127.0.0.1:${await freePort()}`
  const coordinator = startCli(['coordinator', 'examples/linear-regression', '-n', String(workerArgs.length), '--bind', endpoint, '--job-id', 'pieces', '--epochs', '2', '--out', out])
  const workers = workerArgs.map((args) => startCli(['worker', '--coordinator', endpoint, '--job-id', 'pieces', ...args]))
  const [coordinatorExit, ...workerExits] = await Promise.all([waitForExit(coordinator), ...workers.map((w) => waitForExit(w))])
  return { out, coordinator, coordinatorExit: coordinatorExit!, workerExits, workers }
}

test('a coordinator and two workers started separately train the job to the end', async () => {
  const { out, coordinator, coordinatorExit, workerExits } = await job([[], []])
  expect(coordinatorExit.code, coordinator.output()).toBe(0)
  expect(workerExits.map((e) => e.code)).toEqual([0, 0])
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))
  expect(summary).toMatchObject({ workers: 2, epochs: 2, steps: 32, replicasIdentical: true })
}, cliTestTimeout())

test('a job refuses to mix backends across ranks, before step 0', async () => {
  const { coordinator, coordinatorExit, workers } = await job([['--backend', 'wasm', '--local-rank', '0'], ['--backend', 'cpu', '--local-rank', '1']])
  expect(coordinatorExit.code).toBe(1)
  const all = coordinator.output() + workers.map((w) => w.output()).join('')
  expect(all).toMatch(/rank 1 computes on backend 'cpu' but rank 0 on 'wasm'; a job refuses to mix backends because their float results differ\./)
}, cliTestTimeout())

test('a local rank from the environment that is not a number is refused, naming the variable', async () => {
  const run = await runCli(['worker', '--coordinator', 'tcp://127.0.0.1:1'], { env: { LOCAL_RANK: 'abc' } })
  expect(run.code).toBe(2)
  expect(run.output).toContain("ConfigError [E_CONFIG]: LOCAL_RANK must be a non-negative integer (the local rank); got 'abc'.")
}, cliTestTimeout())
