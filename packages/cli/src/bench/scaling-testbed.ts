/**
 * One job of `bench scaling --testbed-hosts H --link-mbit R`: the coordinator and worker 0 on
 * test-bed host 1, worker i on host i+1, started as on real machines (`ringtrain coordinator
 * --bind tcp://HOST1:PORT` and `ringtrain worker --coordinator … --host HOSTi`), with a fresh
 * job key (CURVE on every link), or `--insecure` with `--secure off`. Resolves with the job's
 * exit code once every process has exited; on a failure, the processes' last output lines.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { ConfigError, generateJobKey, writePrivateKeyFile } from '@ringtrain/core'
import type { Testbed } from './testbed.js'

const cliMain = fileURLToPath(new URL('../main.ts', import.meta.url))
const PORT = 29400

export interface BedJob {
  task: string
  workers: number
  steps: number
  backend: string
  out: string
  secure: boolean
}

export async function runJobOnTestbed(bed: Testbed, job: BedJob): Promise<void> {
  const key = job.secure ? writePrivateKeyFile(generateJobKey()) : undefined
  const security = key ? ['--secret-file', key.path] : ['--insecure']
  const coordinatorAt = `tcp://${bed.address(1)}:${PORT}`
  const processes: { name: string; child: ChildProcess; tail: string[] }[] = []
  const start = (name: string, host: number, args: string[]) => {
    const [command, ...prefix] = bed.on(host)
    const child = spawn(command!, [...prefix, process.execPath, '--import', 'tsx', cliMain, ...args], {
      // As the launcher starts workers (Note [Receive buffers and malloc]).
      env: { GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456', ...bed.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const tail: string[] = []
    const keep = (chunk: Buffer) => { tail.push(...chunk.toString().split('\n').filter(Boolean)); tail.splice(0, Math.max(0, tail.length - 8)) }
    child.stdout!.on('data', keep)
    child.stderr!.on('data', keep)
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    processes.push({ name, child, tail })
    return exited
  }
  try {
    const exits = [
      start('coordinator', 1, ['coordinator', job.task, '-n', String(job.workers), '--bind', coordinatorAt, '--job-id', 'bench', ...security,
        '--seed', '42', '--backend', job.backend, '--out', job.out, '--epochs', '1000', '--max-steps', String(job.steps),
        '--heartbeat-max-missed', '30', '--step-timeout-ms', '120000', '--join-timeout-ms', '120000']),
      ...Array.from({ length: job.workers }, (_, i) => start(`worker on host ${i + 1}`, i + 1, ['worker', '--coordinator', coordinatorAt, '--job-id', 'bench', ...security, '--host', bed.address(i + 1)])),
    ]
    const codes = await Promise.all(exits)
    const failed = codes.findIndex((code) => code !== 0)
    if (failed >= 0) {
      const { name, tail } = processes[failed]!
      throw new ConfigError(`the ${job.workers}-worker run of ${job.task} on the test bed failed: the ${name} exited with code ${codes[failed]}. Its last lines:\n${tail.join('\n')}`)
    }
  } finally {
    for (const { child } of processes) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    key?.remove()
  }
}
