/**
 * `ringtrain launch --hosts` / `--hostfile` across emulated hosts (scripts/testbed.sh; CI runs
 * as root, which it needs): the launcher runs on host 1 and starts its workers on hosts 2 and
 * 3 through a real OpenSSH server in each (scripts/testbed-sshd.sh, openssh-server from
 * Debian, a test client key). The job ends bitwise where a local `launch -n 2` ends, remote
 * output carries the host, and whether the launcher is interrupted or killed outright, no
 * remote worker is left behind. The hosts share this machine's file system, so the
 * repository is at the same path on each, as `launch --hosts` assumes.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { cliTestTimeout, repoRoot, runCli, startCli, waitForExit, waitForOutput } from '../helpers/run-cli.js'
import { scaled } from '../helpers/slack.js'
import { parameterHashesIn, tempDir } from '../helpers/temp-dir.js'

const bed = `s${(process.pid % 1_000_000).toString(36)}`.slice(0, 6)
const testbed = join(repoRoot, 'scripts/testbed.sh')
const sshdScript = join(repoRoot, 'scripts/testbed-sshd.sh')
const env = { ...process.env, RINGTRAIN_TESTBED: bed }
const on = (host: number) => [testbed, 'exec', String(host)]
const task = 'test/integration/fixtures/recovery-task.ts'
const job = ['--backend', 'cpu', '--seed', '11', '--epochs', '1']
const remoteHosts = [2, 3]
let sshDir: string
let ssh: string
/** Each remote host's sshd daemon (the listener, which stays). */
const daemons = new Map<number, number>()

beforeAll(() => {
  execFileSync(testbed, ['up', '3'], { env, stdio: 'pipe' })
  sshDir = mkdtempSync(join(tmpdir(), 'ringtrain-sshd-'))
  for (const host of remoteHosts) {
    execFileSync(sshdScript, ['start', String(host), sshDir], { env, stdio: 'pipe' })
    daemons.set(host, Number(readFileSync(join(sshDir, `sshd-${host}.pid`), 'utf8')))
  }
  // No user or system ssh configuration, a key of its own, and these throwaway hosts' keys accepted.
  ssh = `ssh -F /dev/null -i ${join(sshDir, 'client_ed25519')} -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR`
}, 300_000)

afterAll(() => {
  try {
    for (const host of remoteHosts) execFileSync(sshdScript, ['stop', String(host), sshDir], { env, stdio: 'pipe' })
  } finally {
    execFileSync(testbed, ['down'], { env, stdio: 'pipe' })
    rmSync(sshDir, { recursive: true, force: true })
  }
})

let reference: Promise<string[]> | undefined
/** The parameter hashes of `launch -n 2` on this machine, with the same seed (run once). */
function localHashes(): Promise<string[]> {
  reference ??= (async () => {
    const out = mkdtempSync(join(tmpdir(), 'ringtrain-ssh-local-'))
    try {
      const run = await runCli(['launch', '-n', '2', task, ...job, '--quiet', '--out', out])
      expect(run.code, run.output).toBe(0)
      return parameterHashesIn(out)
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  })()
  return reference
}

/** The processes left in host I's network namespace, with their command lines. */
function processesOn(host: number): { pid: number; command: string }[] {
  const pids = execFileSync('ip', ['netns', 'pids', `${bed}h${host}`], { encoding: 'utf8' }).split('\n').filter((l) => l !== '').map(Number)
  return pids.flatMap((pid) => {
    try {
      return [{ pid, command: readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() }]
    } catch {
      return [] // exited meanwhile
    }
  })
}

/** Resolves once hosts 2 and 3 run nothing but their sshd listener, and host 1 nothing at all; fails with what is left after `timeoutMs`. */
async function untilOnlyDaemonsLeft(timeoutMs: number): Promise<void> {
  const leftovers = () => [1, ...remoteHosts].flatMap((host) => processesOn(host).filter((p) => p.pid !== daemons.get(host)).map((p) => `host ${host}: pid ${p.pid} ${p.command}`))
  const deadline = Date.now() + timeoutMs
  // Polled: the end of a process in another namespace sends this test no event.
  while (leftovers().length > 0) {
    if (Date.now() > deadline) throw new Error(`processes left after ${timeoutMs} ms:\n${leftovers().join('\n')}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

test('launch --hosts h2:1,h3:1 starts the workers over ssh, prefixes their lines with the host, and ends bitwise where a local launch -n 2 ends', async () => {
  const expected = await localHashes()
  const out = tempDir('ringtrain-ssh-')
  const run = startCli(['launch', task, '--hosts', '10.213.0.2:1,10.213.0.3:1', '--ssh-command', ssh, ...job, '--quiet', '--out', out], { wrap: on(1), env: { RINGTRAIN_TESTBED: bed } })
  const exit = await waitForExit(run)
  expect(exit.code, run.output()).toBe(0)
  expect(run.output()).toMatch(/starting 2 worker\(s\) for .* on 2 host\(s\), 2 over ssh/)
  expect(run.output()).toMatch(/started worker 0 on 10\.213\.0\.2 over ssh \(ssh pid \d+\)/)
  // Remote output, relayed with the host: each worker runs on its own host.
  for (const host of remoteHosts) {
    expect(run.output()).toMatch(new RegExp(`^\\[10\\.213\\.0\\.${host} worker 0\\] \\[rank [01]/2 round 0 step 0\\] trains 1 epoch`, 'm'))
    expect(run.output()).toContain(`on ${bed}-host${host})`)
  }
  expect(parameterHashesIn(out)).toEqual(expected)
  await untilOnlyDaemonsLeft(scaled(10_000))
}, cliTestTimeout(undefined, 2))

test('a hostfile with localhost: a local worker beside a remote one, bitwise the same result', async () => {
  const expected = await localHashes()
  const out = tempDir('ringtrain-ssh-mixed-')
  const hostfile = join(tempDir('ringtrain-ssh-hostfile-'), 'hosts')
  writeFileSync(hostfile, '# the launcher\'s own machine, then another\nlocalhost slots=1\n10.213.0.3:1\n')
  const run = startCli(['launch', task, '--hostfile', hostfile, '--ssh-command', ssh, ...job, '--quiet', '--out', out], { wrap: on(1), env: { RINGTRAIN_TESTBED: bed } })
  const exit = await waitForExit(run)
  expect(exit.code, run.output()).toBe(0)
  expect(run.output()).toMatch(/started worker 0 \(pid \d+\)\./)
  expect(run.output()).toMatch(/^\[worker 0\] \[rank [01]\/2 round 0 step 0\] trains/m)
  expect(run.output()).toMatch(/^\[10\.213\.0\.3 worker 0\] \[rank [01]\/2 round 0 step 0\] trains/m)
  expect(run.output()).toContain(`on ${bed}-host1)`)
  expect(parameterHashesIn(out)).toEqual(expected)
  await untilOnlyDaemonsLeft(scaled(10_000))
}, cliTestTimeout(undefined, 2))

/** A launcher on host 1 whose remote workers are held in their first batch until `hold` is removed. */
async function heldRemoteJob(name: string) {
  const out = tempDir(`ringtrain-ssh-${name}-`)
  const hold = join(tempDir(`ringtrain-ssh-${name}-hold-`), 'hold')
  writeFileSync(hold, '')
  // In a session of its own (setsid): a signal to its process group is what a terminal's Ctrl-C sends.
  const run = startCli(['launch', task, '--hosts', '10.213.0.2:1,10.213.0.3:1', '--ssh-command', ssh, '--env', 'RINGTRAIN_TEST_HOLD_FILE', ...job, '--quiet', '--out', out], { wrap: ['setsid', ...on(1)], env: { RINGTRAIN_TESTBED: bed, RINGTRAIN_TEST_HOLD_FILE: hold } })
  for (const host of remoteHosts) await waitForOutput(run, new RegExp(`\\[10\\.213\\.0\\.${host} worker 0\\] \\[rank [01]/2 round 0 step 0\\] trains`))
  return { run, hold, out }
}

test('Ctrl-C (SIGINT to the launcher\'s process group) stops gracefully with a checkpoint, exit 130, and no remote worker is left', async () => {
  const { run, hold } = await heldRemoteJob('sigint')
  process.kill(-run.child.pid!, 'SIGINT')
  await waitForOutput(run, /got SIGINT; stopping at the next step boundary/)
  // The step in flight may finish now: the stop comes at its boundary.
  rmSync(hold)
  const exit = await waitForExit(run)
  expect(exit.code, run.output()).toBe(130)
  // ssh, in a group of its own, did not die of the Ctrl-C: the remote workers finished the step and rank 0 checkpointed.
  expect(run.output()).toMatch(/stopped after step \d+; checkpoint .*checkpoints\/step-\d+/)
  expect(run.output()).not.toMatch(/stdin ended/)
  await untilOnlyDaemonsLeft(scaled(10_000))
}, cliTestTimeout())

test('a launcher killed outright (SIGKILL) leaves no ssh and no remote worker: they end with the closed stdin', async () => {
  const { run } = await heldRemoteJob('sigkill')
  run.child.kill('SIGKILL')
  await waitForExit(run)
  // Well within the heartbeats that would stop a worker that lost its coordinator (10 s at least).
  await untilOnlyDaemonsLeft(scaled(5_000))
}, cliTestTimeout())
