/**
 * Jobs across emulated hosts (scripts/testbed.sh: network namespaces with their own
 * hostnames on a bridge; CI runs as root, which it needs). The coordinator runs on host 1,
 * one worker on each of hosts 2 and 3: same kernel, other network stacks, so the ring must
 * use tcp, and the result must be bitwise that of a local job.
 */
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { cliTestTimeout, repoRoot, runCli, startCli, waitForExit, waitForOutput } from '../helpers/run-cli.js'
import { scaled } from '../helpers/slack.js'
import { testKeyFile } from '../helpers/test-key.js'
import { parameterHashesIn, tempDir } from '../helpers/temp-dir.js'

const bed = `t${(process.pid % 1_000_000).toString(36)}`.slice(0, 6)
const script = join(repoRoot, 'scripts/testbed.sh')
const env = { ...process.env, RINGTRAIN_TESTBED: bed }
const on = (host: number) => [script, 'exec', String(host)]
const address = (host: number) => `10.213.0.${host}`
const task = 'test/integration/fixtures/recovery-task.ts'
const job = ['--backend', 'cpu', '--seed', '11', '--epochs', '1']

beforeAll(() => {
  execFileSync(script, ['up', '3'], { env, stdio: 'pipe' })
})
afterAll(() => {
  execFileSync(script, ['down'], { env, stdio: 'pipe' })
})

test('a job across 3 hosts (coordinator on one, a worker on each of two others) ends bitwise where a local job ends', async () => {
  const local = tempDir('ringtrain-testbed-local-')
  const reference = await runCli(['launch', '-n', '2', task, ...job, '--quiet', '--out', local])
  expect(reference.code, reference.output).toBe(0)

  const out = tempDir('ringtrain-testbed-')
  const key = testKeyFile()
  const coordinator = startCli(['coordinator', task, '-n', '2', '--bind', `tcp://${address(1)}:29400`, '--job-id', 'bed', '--secret-file', key, ...job, '--out', out], { wrap: on(1), env: { RINGTRAIN_TESTBED: bed } })
  await waitForOutput(coordinator, /waits for 2 worker\(s\) on tcp:\/\/10\.213\.0\.1:29400/)
  // Host 2 names its address; host 3 leaves it to the route to the coordinator.
  const hostFlags = [['--host', address(2)], []]
  const workers = [2, 3].map((h, i) => startCli(['worker', '--coordinator', `tcp://${address(1)}:29400`, '--job-id', 'bed', '--secret-file', key, ...hostFlags[i]!], { wrap: on(h), env: { RINGTRAIN_TESTBED: bed } }))
  const exits = await Promise.all([coordinator, ...workers].map((p) => waitForExit(p)))
  expect(workers[1]!.output()).toContain(`listens for its peers on ${address(3)}, this machine's address on the route to the coordinator`)
  expect(exits.map((e) => e.code), `${coordinator.output()}\n${workers.map((w) => w.output()).join('\n')}`).toEqual([0, 0, 0])
  expect(coordinator.output()).toMatch(new RegExp(`Round 0 starts with 2 workers on 2 host\\(s\\)`))
  expect(parameterHashesIn(out)).toEqual(parameterHashesIn(local))
}, cliTestTimeout(undefined, 2))

test('a worker on another host that advertises a loopback address (--host 127.0.0.1) is refused at its join, in seconds, with the fix', async () => {
  const out = tempDir('ringtrain-testbed-nohost-')
  const key = testKeyFile()
  const coordinator = startCli(['coordinator', task, '-n', '2', '--bind', `tcp://${address(1)}:29401`, '--job-id', 'bed', '--secret-file', key, ...job, '--out', out], { wrap: on(1), env: { RINGTRAIN_TESTBED: bed } })
  await waitForOutput(coordinator, /waits for 2 worker\(s\)/)
  const started = Date.now()
  const forgetful = startCli(['worker', '--coordinator', `tcp://${address(1)}:29401`, '--job-id', 'bed', '--secret-file', key, '--host', '127.0.0.1'], { wrap: on(2), env: { RINGTRAIN_TESTBED: bed } })
  const exit = await waitForExit(forgetful, scaled(30_000))
  expect(exit.code).toBe(1)
  expect(Date.now() - started).toBeLessThan(scaled(30_000))
  expect(forgetful.output()).toMatch(new RegExp(`it advertises tcp://127\\.0\\.0\\.1:\\d+, a loopback address, but runs on another host than the coordinator \\(${bed}-host1\\), so its peers could not reach it\\. Start it with --host ADDRESS`))
  coordinator.child.kill('SIGTERM')
  await waitForExit(coordinator)
}, cliTestTimeout())

test('--transport ipc refuses a peer on another host instead of hanging: it names the peer and the fix', async () => {
  const out = tempDir('ringtrain-testbed-ipc-')
  const key = testKeyFile()
  const coordinator = startCli(['coordinator', task, '-n', '2', '--bind', `tcp://${address(1)}:29402`, '--job-id', 'bed', '--secret-file', key, ...job, '--out', out], { wrap: on(1), env: { RINGTRAIN_TESTBED: bed } })
  await waitForOutput(coordinator, /waits for 2 worker\(s\)/)
  const workers = [2, 3].map((h) => startCli(['worker', '--coordinator', `tcp://${address(1)}:29402`, '--job-id', 'bed', '--secret-file', key, '--host', address(h), '--transport', 'ipc'], { wrap: on(h), env: { RINGTRAIN_TESTBED: bed } }))
  const exits = await Promise.all([coordinator, ...workers].map((p) => waitForExit(p)))
  expect(exits.map((e) => e.code)).toEqual([1, 1, 1])
  expect(coordinator.output()).toMatch(/cannot reach rank [01] over ipc \(--transport ipc\): it is on another host or namespace/)
}, cliTestTimeout())
