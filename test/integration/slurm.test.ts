/**
 * Workers started by Debian's real Slurm (slurmctld, slurmd and munged, installed by
 * scripts/ensure-debian-packages.sh when missing): scripts/slurm-local.sh runs a one-node
 * cluster on an emulated host of scripts/testbed.sh (its own network namespace and hostname,
 * so the daemons' ports clash with nothing, and CI runs it as root). The workers get no
 * --coordinator: they take the coordinator's host from the first node of SLURM_JOB_NODELIST
 * (the node's hostname, which the cluster's own /etc/hosts resolves), its port from
 * RINGTRAIN_PORT, and their local rank from SLURM_LOCALID; the job must end bitwise where
 * `ringtrain launch` with the same seed ends. The second test submits
 * examples/deploy/slurm.sbatch as a user would.
 */
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { CLI_DEADLINE_MS, cliTestTimeout, repoRoot, runCli, startCli, waitForExit, waitForOutput } from '../helpers/run-cli.js'
import { scaled, slack } from '../helpers/slack.js'
import { testKeyFile } from '../helpers/test-key.js'
import { parameterHashesIn, tempDir } from '../helpers/temp-dir.js'

const bed = `s${(process.pid % 1_000_000).toString(36)}`.slice(0, 6)
const script = join(repoRoot, 'scripts/slurm-local.sh')
const env = { ...process.env, RINGTRAIN_TESTBED: bed, RINGTRAIN_SLURM_DEADLINE_S: String(Math.ceil(scaled(60_000) / 1000)) }
const onNode = [script, 'exec']
// Nothing in the test's own environment may name the coordinator: the node list must.
const schedulerEnv = { RINGTRAIN_TESTBED: bed, RINGTRAIN_COORDINATOR: undefined, MASTER_ADDR: undefined, MASTER_PORT: undefined }
const task = 'test/integration/fixtures/recovery-task.ts'
const job = ['--backend', 'cpu', '--seed', '13', '--epochs', '1', '--max-steps', '10']
// A machine with one CPU still runs two tasks on its node.
const overcommit = '--overcommit'

beforeAll(() => {
  execFileSync(script, ['up'], { env, stdio: 'pipe' })
}, 300_000)
afterAll(() => {
  execFileSync(script, ['down'], { env, stdio: 'pipe' })
}, 60_000)

let reference: Promise<string[]> | undefined
/** Parameter hashes of `ringtrain launch -n 2` with the same flags, run once for both tests. */
function referenceHashes(): Promise<string[]> {
  reference ??= (async () => {
    const local = tempDir('ringtrain-slurm-local-')
    const run = await runCli(['launch', '-n', '2', task, ...job, '--quiet', '--out', local])
    expect(run.code, run.output).toBe(0)
    return parameterHashesIn(local)
  })()
  return reference
}

test('srun -n 2 ringtrain worker, with no --coordinator, joins the coordinator on the node list\'s first node and ends bitwise where launch does', async () => {
  const expected = await referenceHashes()
  const node = execFileSync(script, ['host'], { env, encoding: 'utf8' }).trim()
  const address = execFileSync(join(repoRoot, 'scripts/testbed.sh'), ['addr', '1'], { env, encoding: 'utf8' }).trim()
  const port = 29412
  const out = tempDir('ringtrain-slurm-')
  const key = testKeyFile()
  const coordinator = startCli(['coordinator', task, '-n', '2', '--bind', `tcp://${address}:${port}`, '--job-id', 'slurm', '--secret-file', key, ...job, '--out', out], { wrap: onNode, env: schedulerEnv })
  await waitForOutput(coordinator, new RegExp(`waits for 2 worker\\(s\\) on tcp://${address.replaceAll('.', '\\.')}:${port}`))
  const workers = startCli(['worker', '--job-id', 'slurm', '--secret-file', key], { wrap: [...onNode, 'srun', '-n', '2', overcommit], env: { ...schedulerEnv, RINGTRAIN_PORT: String(port) } })
  const workersExit = await waitForExit(workers)
  // Workers that failed to join would leave the coordinator waiting for them: it fails now.
  if (workersExit.code !== 0) coordinator.child.kill('SIGTERM')
  const coordinatorExit = await waitForExit(coordinator)
  expect([coordinatorExit.code, workersExit.code], `${coordinator.output()}\n${workers.output()}`).toEqual([0, 0])
  // Both found it by the node's name, as the node list gives it.
  expect(workers.output().split(`(coordinator tcp://${node}:${port})`)).toHaveLength(3)
  expect(coordinator.output()).toMatch(new RegExp(`rank 0 \\(pid \\d+ on ${node}\\), rank 1 \\(pid \\d+ on ${node}\\)`))
  expect(parameterHashesIn(out)).toEqual(expected)
}, cliTestTimeout(undefined, 2))

/**
 * `sbatch --wait examples/deploy/slurm.sbatch TASK FLAGS...` on one node with two tasks, from a
 * submit folder of its own (where the script puts the per-job key). The job runs in the
 * repository (--chdir: the task's path and tsx resolve there).
 */
async function submit(flags: string[], timeoutMs: number) {
  const submitDir = tempDir('ringtrain-slurm-submit-')
  const jobOutput = join(submitDir, 'job.out')
  const sbatch = [
    'sbatch', '--wait', `--chdir=${repoRoot}`, '--nodes=1', '--ntasks-per-node=2', overcommit, `--output=${jobOutput}`,
    join(repoRoot, 'examples/deploy/slurm.sbatch'), task, ...flags,
  ]
  const ringtrain = `${process.execPath} --import tsx ${join(repoRoot, 'packages/cli/src/main.ts')}`
  const exit = await promisify(execFile)(script, ['exec', ...sbatch], {
    cwd: submitDir, env: { ...env, ...schedulerEnv, RINGTRAIN: ringtrain, NODE_PATH: undefined }, timeout: timeoutMs,
  }).then(() => 0, (error: { code?: number; signal?: string; stderr?: string }) => error.code ?? `${error.signal}: ${error.stderr}`)
  const output = existsSync(jobOutput) ? readFileSync(jobOutput, 'utf8') : `(no ${jobOutput})`
  return { exit, output, keys: readdirSync(submitDir).filter((name) => name.endsWith('.key')) }
}

test('sbatch examples/deploy/slurm.sbatch runs the coordinator and srun\'s workers in one allocation, removes its job key, and ends bitwise where launch does', async () => {
  const expected = await referenceHashes()
  const out = tempDir('ringtrain-slurm-sbatch-')
  // Flags after the script go to the coordinator, with the load tolerance startCli gives
  // every coordinator a test starts.
  const tolerance = ['--heartbeat-max-missed', String(Math.ceil(10 * slack)), '--step-timeout-ms', String(scaled(60_000))]
  const run = await submit([...job, ...tolerance, '--out', out], CLI_DEADLINE_MS)
  expect(run.exit, run.output).toBe(0)
  expect(run.output).toMatch(/Job "slurm-\d+" finished/)
  expect(run.keys).toEqual([])
  expect(parameterHashesIn(out)).toEqual(expected)
}, cliTestTimeout(undefined, 2))

test('a coordinator that fails in the batch script ends the job in seconds with its exit code, not after the workers\' join timeout', async () => {
  const started = Date.now()
  const failed = await submit([...job, '--batch-size', '0'], scaled(60_000))
  expect(failed.exit, failed.output).toBe(2)
  expect(failed.output).toContain('--batch-size must be a positive integer; got 0.')
  expect(failed.keys).toEqual([])
  // The workers' --join-timeout-ms is 330 s: the job ended long before.
  expect(Date.now() - started).toBeLessThan(scaled(60_000))
}, cliTestTimeout(scaled(60_000)))
