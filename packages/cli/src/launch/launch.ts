/**
 * The launcher: runs the coordinator in this process, starts `worldSize` workers as child
 * processes (on other machines over ssh, with `hosts`), relays their output, draws
 * progress, and stops everything on a signal.
 */
import { startCoordinator, type CoordinatorEvent, type DataSource } from '@ringtrain/coordinator'
import { ConfigError, formatJobKey, generateJobKey, writePrivateKeyFile, type JobConfig, type JobKey } from '@ringtrain/core'
import { routedAddress } from '../commands/routed-address.js'
import { Children } from './children.js'
import { ProgressBar } from './progress.js'
import { withoutSchedulerRanks } from '../commands/scheduler-environment.js'
import { addressOf, placeWorkers, type HostSlots, type Placement } from './remote-hosts.js'
import { DEFAULT_SSH_COMMAND, remoteEnvironment, splitCommandLine, sshWorkerCommand } from './ssh-workers.js'
import { workerCommand } from './worker-command.js'

export interface LaunchOptions {
  gpusPerNode: number
  /** No progress bar. */
  quiet: boolean
  /** Relay the workers' output (default true). */
  logWorkers?: boolean
  /** Encrypt the ring between the workers too (Note [Job security] in @ringtrain/core). */
  encryptLocal?: boolean
  /** Elastic jobs: lost workers started again, in all (default 3). */
  maxRestarts?: number
  /** Also write TensorBoard scalars into this folder. */
  tensorboardDir?: string
  /** Machines and their slots (`--hosts`, `--hostfile`); unset: every worker on this one. */
  hosts?: HostSlots[]
  /** How to reach the other machines (`--ssh-command`, default `ssh -o BatchMode=yes`). */
  sshCommand?: string
  /** Shell words that run ringtrain on the other machines (default: this launcher's Node and CLI, same paths). */
  remoteCommand?: string
  /** The coordinator's endpoint (default: loopback, or this machine's address on the route to the first other host). */
  bind?: string
  /** Environment variables set for remote workers: NAME (its value here) or NAME=VALUE. */
  remoteEnv?: string[]
  /** `--serve-data`: the task's data, which the coordinator sends to the workers. */
  dataSource?: DataSource
}

/** How long a remote worker's failed ssh waits for the worker's own failure report before the launcher stops the job. */
const REMOTE_EXIT_GRACE_MS = 3_000
/** See Note [Receive buffers and malloc] (core/transport/zeromq-options.ts). */
const GLIBC_TUNABLES = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456'

export async function launch(config: JobConfig, options: LaunchOptions): Promise<number> {
  // A fresh key per job, for the workers through a file only this user can read (never on a
  // command line or in the environment, where other users of the machine could see it).
  const key = generateJobKey()
  const keyFile = writePrivateKeyFile(key)
  try {
    return await launchWithKey(config, options, key, keyFile.path)
  } finally {
    keyFile.remove()
  }
}

async function launchWithKey(config: JobConfig, options: LaunchOptions, key: JobKey, keyPath: string): Promise<number> {
  /** Set once the job ended or failed: lost workers are no longer started again. */
  let settled = false
  const progress = new ProgressBar()
  const log = (text: string) => progress.log(text)
  const placements: Placement[] = options.hosts !== undefined
    ? placeWorkers(options.hosts, config.worldSize)
    : Array.from({ length: config.worldSize }, (_, localRank) => ({ host: 'localhost', localRank, local: true }))
  const remote = placements.filter((p) => !p.local)
  const ssh = splitCommandLine(options.sshCommand ?? DEFAULT_SSH_COMMAND, 'ssh-command')
  const remoteEnv = remoteEnvironment(options.remoteEnv ?? [])
  const coordinator = await startCoordinator(config, {
    bind: options.bind ?? (remote.length > 0 ? `tcp://${await addressToward(remote[0]!.host)}:0` : 'tcp://127.0.0.1:0'),
    security: { mode: 'key', key, encryptLocal: options.encryptLocal ?? false },
    log,
    ...(options.tensorboardDir !== undefined ? { tensorboardDir: options.tensorboardDir } : {}),
    dataSource: options.dataSource,
    onEvent: (event: CoordinatorEvent) => {
      if (event.type === 'metrics' && !options.quiet) progress.update(event.progress)
      // A job that ended (or failed) takes no restarted worker.
      if (event.type === 'done' || event.type === 'failed') settled = true
    },
  })
  const hostCount = new Set(placements.map((p) => p.host)).size
  log(`[launcher] coordinator of job ${config.jobId} listens on ${coordinator.endpoint}; starting ${config.worldSize} worker(s) for ${config.task}${remote.length > 0 ? ` on ${hostCount} host(s), ${remote.length} over ssh` : ''}.`)
  // Listening on every interface: a worker connects to the address on its route to us.
  const wildcard = /^tcp:\/\/(0\.0\.0\.0|\*):/.exec(coordinator.endpoint)
  const endpointFor = async (placement: Placement) => wildcard === null ? coordinator.endpoint : coordinator.endpoint.replace(wildcard[1]!, placement.local ? '127.0.0.1' : await addressToward(placement.host))

  // The worker package loads tfjs: only for GPU jobs does the launcher need anything from it.
  const cudaVisibleDevicesFor = options.gpusPerNode > 0 ? (await import('@ringtrain/worker')).cudaVisibleDevicesFor : undefined
  const children = new Children((label, line) => {
    if (options.logWorkers !== false) log(`[${label}] ${line}`)
  })
  // Elastic jobs: a lost worker is started again (up to --max-restarts in all, as torchrun
  // does) and joins the running job at its next step boundary.
  let restartsLeft = config.minWorkers !== undefined ? options.maxRestarts ?? 3 : 0
  // The first signal stops gracefully, a second at once (see onSignal below).
  let interruptedBy: NodeJS.Signals | undefined
  let hardStop = false
  const startWorker = async (placement: Placement) => {
    const { host, localRank } = placement
    const perWorker: Record<string, string> = { RINGTRAIN_LOCAL_RANK: String(localRank) }
    if (cudaVisibleDevicesFor) perWorker['CUDA_VISIBLE_DEVICES'] = cudaVisibleDevicesFor(localRank, options.gpusPerNode)
    const args = ['--coordinator', await endpointFor(placement), '--job-id', config.jobId, '--local-rank', String(localRank), ...(options.encryptLocal ? ['--encrypt-local'] : [])]
    let started: ReturnType<Children['start']>
    let label: string
    if (placement.local) {
      label = `worker ${localRank}`
      const { command, args: full } = workerCommand([...args, '--secret-file', keyPath])
      started = children.start(label, command, full, { GLIBC_TUNABLES, ...withoutSchedulerRanks(process.env), ...perWorker, RINGTRAIN_LAUNCHER_PID: String(process.pid) })
      log(`[launcher] started worker ${localRank} (pid ${started.child.pid}).`)
    } else {
      label = `${host} worker ${localRank}`
      const env = { GLIBC_TUNABLES: process.env['GLIBC_TUNABLES'] ?? GLIBC_TUNABLES, ...perWorker, ...remoteEnv }
      const { command, args: full } = sshWorkerCommand({ host, ssh, cwd: process.cwd(), invocation: options.remoteCommand, env, args })
      // The key down ssh's stdin, which stays open: the remote worker ends when it closes.
      started = children.start(label, command, full, process.env, { stdin: formatJobKey(key), ownGroup: true })
      log(`[launcher] started worker ${localRank} on ${host} over ssh (ssh pid ${started.child.pid}).`)
    }
    void started.exit.then(({ pid, code, signal }) => {
      // The coordinator knows its workers by pid: only a local one's is comparable.
      if (placement.local) coordinator.notifyWorkerExited(pid, code, signal)
      if (settled || interruptedBy !== undefined || (code === 0 && signal === null)) return
      const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}${!placement.local && code === 255 ? ' (ssh could not connect or log in)' : ''}`
      if (restartsLeft > 0) {
        restartsLeft--
        log(`[launcher] ${label} (pid ${pid}) ${how}; starting it again (${restartsLeft} restart(s) left).`)
        void startWorker(placement)
      } else if (!placement.local && config.minWorkers === undefined) {
        // A worker that never came up (ssh refused, no ringtrain there) would leave the
        // coordinator waiting for its join: stop the job, unless the worker's own failure
        // report (which names the cause) settles it first.
        setTimeout(() => {
          if (!settled && interruptedBy === undefined) void coordinator.stop(`${label}: ssh ${how}; see its lines above`)
        }, REMOTE_EXIT_GRACE_MS).unref()
      }
    })
  }
  for (const placement of placements) await startWorker(placement)

  // The first signal stops gracefully: the ranks finish the step in flight and rank 0 writes
  // a checkpoint (workers started with RINGTRAIN_LAUNCHER_PID ignore a terminal's SIGINT, see
  // commands/worker.ts; ssh runs in a process group of its own); a second stops at once.
  const onSignal = (signal: NodeJS.Signals) => {
    if (interruptedBy === undefined) {
      interruptedBy = signal
      log(`[launcher] got ${signal}; stopping at the next step boundary with a checkpoint (${signal} again stops at once).`)
      void coordinator.requestStop(`the launcher got ${signal}`)
      return
    }
    if (hardStop) return
    hardStop = true
    log(`[launcher] got ${signal} again; stopping the coordinator and ${config.worldSize} worker(s) now${remote.length > 0 ? ' (remote workers end with their ssh connection)' : ''}.`)
    void coordinator.stop(`the launcher got ${signal}`)
    void children.stopAll({ killGraceMs: 5_000 })
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  try {
    const result = await coordinator.done
    settled = true
    progress.finish()
    // Workers exit by themselves after Shutdown or Abort; make sure of it.
    await children.stopAll({ exitGraceMs: result.ok ? 10_000 : 3_000, killGraceMs: 3_000 })
    if (interruptedBy) {
      if (result.summary?.checkpoint) log(`[launcher] stopped after step ${result.summary.steps}; checkpoint ${result.summary.checkpoint.dir}. Continue with --resume ${config.outDir}.`)
      return interruptedBy === 'SIGINT' ? 130 : 143
    }
    if (result.ok) log(`[launcher] job ${config.jobId} finished: ${JSON.stringify(result.summary)}`)
    else log(`[launcher] job ${config.jobId} failed: ${result.error?.message ?? 'unknown reason'}`)
    return result.exitCode
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await children.stopAll({ killGraceMs: 1_000 })
  }
}

/** This machine's address on the route to `host` (where its workers connect to the coordinator). */
async function addressToward(host: string): Promise<string> {
  try {
    return await routedAddress(addressOf(host), 22)
  } catch (cause) {
    throw new ConfigError(`this machine has no route to ${host} (${(cause as Error).message}); pass --bind tcp://ADDRESS:PORT with an address of this machine that ${host} reaches.`, { flag: 'hosts', expected: 'a host this machine can reach', got: host }, { cause })
  }
}
