/**
 * `--serve-data`: workers on hosts that cannot see the task's data files train with samples
 * the coordinator sends them, and end bitwise where a job with local data ends. Emulated
 * hosts (scripts/testbed.sh; CI runs as root, which it and `unshare --mount` need): the
 * coordinator on host 1 sees the data folder; each worker on hosts 2 and 3 runs in a mount
 * namespace of its own with an empty tmpfs over that folder.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { cliTestTimeout, repoRoot, runCli, startCli, waitForExit, waitForOutput } from '../helpers/run-cli.js'
import { testKeyFile } from '../helpers/test-key.js'
import { parameterHashesIn, tempDir } from '../helpers/temp-dir.js'
import { writeServedData } from './fixtures/served-data-task.ts'

const bed = `sd${(process.pid % 1_000_000).toString(36)}`.slice(0, 6)
const script = join(repoRoot, 'scripts/testbed.sh')
const on = (host: number) => [script, 'exec', String(host)]
const address = (host: number) => `10.213.0.${host}`
const task = 'test/integration/fixtures/served-data-task.ts'
const job = ['--backend', 'cpu', '--seed', '5']

beforeAll(() => {
  execFileSync(script, ['up', '3'], { env: { ...process.env, RINGTRAIN_TESTBED: bed }, stdio: 'pipe' })
})
afterAll(() => {
  execFileSync(script, ['down'], { env: { ...process.env, RINGTRAIN_TESTBED: bed }, stdio: 'pipe' })
})

/** A coordinator on host 1 (`serve`: with --serve-data) and workers on hosts 2 and 3 that do not see `data`. */
async function hostsWithoutData(data: string, out: string, port: number, serve: boolean) {
  const env = { RINGTRAIN_TESTBED: bed, RINGTRAIN_TEST_DATA_DIR: data }
  const key = testKeyFile()
  const coordinator = startCli(['coordinator', task, '-n', '2', '--bind', `tcp://${address(1)}:${port}`, '--job-id', 'served', '--secret-file', key, ...job, '--out', out, ...(serve ? ['--serve-data'] : [])], { wrap: on(1), env })
  await waitForOutput(coordinator, /waits for 2 worker\(s\)/)
  const hideData = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs tmpfs "$0" && exec "$@"', data]
  const workers = [2, 3].map((h) => startCli(['worker', '--coordinator', `tcp://${address(1)}:${port}`, '--job-id', 'served', '--secret-file', key, '--host', address(h)], { wrap: [...on(h), ...hideData], env }))
  const exits = await Promise.all([coordinator, ...workers].map((p) => waitForExit(p)))
  return { coordinator, workers, codes: exits.map((e) => e.code), output: `${coordinator.output()}\n${workers.map((w) => w.output()).join('\n')}` }
}

test('workers that cannot see the data files train on samples the coordinator serves, bitwise as with local data', async () => {
  const data = tempDir('ringtrain-served-data-')
  writeServedData(data)
  const local = tempDir('ringtrain-served-local-')
  const reference = await runCli(['launch', '-n', '2', task, ...job, '--quiet', '--out', local], { env: { RINGTRAIN_TEST_DATA_DIR: data } })
  expect(reference.code, reference.output).toBe(0)
  // launch --serve-data: its workers take their samples from the coordinator in the launcher.
  const launched = tempDir('ringtrain-served-launch-')
  const viaLaunch = await runCli(['launch', '-n', '2', task, ...job, '--quiet', '--serve-data', '--out', launched], { env: { RINGTRAIN_TEST_DATA_DIR: data } })
  expect(viaLaunch.code, viaLaunch.output).toBe(0)
  expect(viaLaunch.output).toContain("serves the data of task 'served-data' to the workers")
  expect(parameterHashesIn(launched)).toEqual(parameterHashesIn(local))

  // Without --serve-data the hidden folder is really out of the workers' reach: their loader fails on the missing file.
  const refused = await hostsWithoutData(data, tempDir('ringtrain-served-none-'), 29410, false)
  expect(refused.codes, refused.output).not.toEqual([0, 0, 0])
  expect(refused.output).toMatch(new RegExp(`ENOENT[^\\n]*${join(data, 'train-')}`))

  const out = tempDir('ringtrain-served-')
  const served = await hostsWithoutData(data, out, 29411, true)
  expect(served.codes, served.output).toEqual([0, 0, 0])
  expect(served.coordinator.output()).toContain("serves the data of task 'served-data' to the workers: train 90 samples")
  expect(parameterHashesIn(out)).toEqual(parameterHashesIn(local))
  const summary = (dir: string) => JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as { steps: number; eval: Record<string, number>; maxRssBytes: number[] }
  expect(summary(out).steps).toBe(summary(local).steps)
  expect(summary(out).eval).toEqual(summary(local).eval)
  expect(summary(out).maxRssBytes.length, 'each rank reports its peak memory').toBe(2)
}, cliTestTimeout(undefined, 4))

test('a coordinator whose data cannot load fails before any worker joins, naming the task, the split and the file', async () => {
  const missing = join(tempDir('ringtrain-served-missing-'), 'nothing-here')
  const run = await runCli(['coordinator', task, '-n', '2', '--bind', 'tcp://127.0.0.1:0', '--serve-data', ...job, '--out', tempDir('ringtrain-served-out-')], { env: { RINGTRAIN_TEST_DATA_DIR: missing } })
  expect(run.code, run.output).toBe(2)
  expect(run.output).toMatch(new RegExp(`ConfigError \\[E_CONFIG\\]: --serve-data: task 'served-data' data\\.train\\(\\) failed on the coordinator's machine: ENOENT[^\\n]*${join(missing, 'train-images')}`))
  expect(run.output).not.toMatch(/waits for 2 worker/)
}, cliTestTimeout())
