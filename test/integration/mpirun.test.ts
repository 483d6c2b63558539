/**
 * Workers started by Debian's real `mpirun` (Open MPI, installed by
 * scripts/ensure-debian-packages.sh when missing) against `ringtrain coordinator`: they take
 * the coordinator from RINGTRAIN_COORDINATOR and their rank, world size and local rank from
 * Open MPI's environment, and the job ends bitwise where `ringtrain launch` with the same seed ends.
 */
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { beforeAll, expect, test } from 'vitest'
import { cliTestTimeout, repoRoot, runCli, startCli, waitForExit, waitForOutput } from '../helpers/run-cli.js'
import { scaled } from '../helpers/slack.js'
import { testKeyFile } from '../helpers/test-key.js'
import { parameterHashesIn, tempDir } from '../helpers/temp-dir.js'

const task = 'test/integration/fixtures/recovery-task.ts'
const job = ['--backend', 'cpu', '--seed', '13', '--epochs', '1']

beforeAll(() => {
  execFileSync(join(repoRoot, 'scripts/ensure-debian-packages.sh'), ['openmpi-bin'], { stdio: 'pipe' })
}, 300_000)

test('mpirun -np 2 ringtrain worker joins a ringtrain coordinator and ends bitwise where launch does', async () => {
  const local = tempDir('ringtrain-mpirun-local-')
  const reference = await runCli(['launch', '-n', '2', task, ...job, '--quiet', '--out', local])
  expect(reference.code, reference.output).toBe(0)

  const out = tempDir('ringtrain-mpirun-')
  const key = testKeyFile()
  const coordinator = startCli(['coordinator', task, '-n', '2', '--bind', 'tcp://127.0.0.1:0', '--job-id', 'mpi', '--secret-file', key, ...job, '--out', out])
  const endpoint = /waits for 2 worker\(s\) on (tcp:\/\/127\.0\.0\.1:\d+)/.exec(await waitForOutput(coordinator, /waits for 2 worker\(s\) on tcp:\/\/127\.0\.0\.1:\d+/))![1]!
  // As a user runs it: no per-process flags; Open MPI hands each process its local rank.
  const mpirun = ['mpirun', '--allow-run-as-root', '--oversubscribe', '-np', '2', '-x', `RINGTRAIN_COORDINATOR=${endpoint}`, '-x', 'PATH']
  const workers = startCli(['worker', '--job-id', 'mpi', '--secret-file', key], { wrap: mpirun })
  const [coordinatorExit, workersExit] = await Promise.all([waitForExit(coordinator), waitForExit(workers)])
  expect([coordinatorExit.code, workersExit.code], `${coordinator.output()}\n${workers.output()}`).toEqual([0, 0])
  expect(coordinator.output()).toMatch(/rank 0 \(pid \d+ on \S+\), rank 1 \(pid \d+ on \S+\)/)
  expect(parameterHashesIn(out)).toEqual(parameterHashesIn(local))
  // Each process got the rank Open MPI gave it (OMPI_COMM_WORLD_RANK).
  const asked = [...workers.output().matchAll(/\[worker pid (\d+)\] asks for rank (\d) in a world of 2 \(OMPI_COMM_WORLD_RANK\/OMPI_COMM_WORLD_SIZE\)/g)].map((m) => [m[2], m[1]]).sort()
  const given = [...coordinator.output().matchAll(/rank (\d) \(pid (\d+) on/g)].slice(0, 2).map((m) => [m[1], m[2]]).sort()
  expect(asked).toHaveLength(2)
  expect(given).toEqual(asked)
}, cliTestTimeout(undefined, 2))

test('mpirun -np 2 against a coordinator of 3 workers: refused at the join, in seconds, naming both counts', async () => {
  const key = testKeyFile()
  const coordinator = startCli(['coordinator', task, '-n', '3', '--bind', 'tcp://127.0.0.1:0', '--job-id', 'mpi3', '--secret-file', key, ...job, '--out', tempDir('ringtrain-mpirun-size-')])
  const endpoint = /waits for 3 worker\(s\) on (tcp:\/\/127\.0\.0\.1:\d+)/.exec(await waitForOutput(coordinator, /waits for 3 worker\(s\) on tcp:\/\/127\.0\.0\.1:\d+/))![1]!
  const mpirun = ['mpirun', '--allow-run-as-root', '--oversubscribe', '-np', '2', '-x', `RINGTRAIN_COORDINATOR=${endpoint}`, '-x', 'PATH']
  const started = Date.now()
  const workers = startCli(['worker', '--job-id', 'mpi3', '--secret-file', key], { wrap: mpirun })
  const exit = await waitForExit(workers, scaled(60_000))
  coordinator.child.kill('SIGTERM')
  await waitForExit(coordinator)
  expect(exit.code, workers.output()).not.toBe(0)
  // The coordinator's join timeout is 300 s; the refusal comes at the join.
  expect(Date.now() - started).toBeLessThan(scaled(60_000))
  expect(workers.output()).toContain('its launcher started 2 workers (OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE), but the job runs 3 workers (-n). Start the coordinator with -n 2, or start 3 workers.')
}, cliTestTimeout(undefined, 2))
