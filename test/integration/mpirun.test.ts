/**
 * Workers started by Debian's real `mpirun` (Open MPI, installed by
 * scripts/ensure-debian-packages.sh when missing) against `ringtrain coordinator`: they take
 * the coordinator from RINGTRAIN_COORDINATOR and their local rank from Open MPI's
 * environment, and the job ends bitwise where `ringtrain launch` with the same seed ends.
 */
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { beforeAll, expect, test } from 'vitest'
import { cliTestTimeout, repoRoot, runCli, startCli, waitForExit, waitForOutput } from '../helpers/run-cli.js'
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
}, cliTestTimeout(undefined, 2))
