/**
 * The launcher: runs the coordinator in this process, starts `worldSize` workers as child
 * processes, relays their output, draws progress, and stops everything on a signal.
 */
import { startCoordinator, type CoordinatorEvent, type DataSource } from '@ringtrain/coordinator'
import { generateJobKey, writePrivateKeyFile, type JobConfig, type JobSecurity } from '@ringtrain/core'
import { Children } from './children.js'
import { ProgressBar } from './progress.js'
import { workerCommand } from './worker-command.js'

export interface LaunchOptions {
  gpusPerNode: number
  /** No progress bar. */
  quiet: boolean
  /** Relay the workers' output (default true). */
  logWorkers?: boolean
  /** Encrypt the ring between the workers too (Note [Job security] in @ringtrain/core). */
  encryptLocal?: boolean
  /** Elastic jobs: lost local workers started again, in all (default 3). */
  maxRestarts?: number
  /** `--serve-data`: the task's data, which the coordinator sends to the workers. */
  dataSource?: DataSource
}

export async function launch(config: JobConfig, options: LaunchOptions): Promise<number> {
  // A fresh key per job, for the workers through a file only this user can read (never on a
  // command line or in the environment, where other users of the machine could see it).
  const key = generateJobKey()
  const keyFile = writePrivateKeyFile(key)
  try {
    return await launchWithKey(config, options, { mode: 'key', key, encryptLocal: options.encryptLocal ?? false }, keyFile.path)
  } finally {
    keyFile.remove()
  }
}

async function launchWithKey(config: JobConfig, options: LaunchOptions, security: JobSecurity, keyPath: string): Promise<number> {
  /** Set once the job ended or failed: lost workers are no longer started again. */
  let settled = false
  const progress = new ProgressBar()
  const log = (text: string) => progress.log(text)
  const coordinator = await startCoordinator(config, {
    bind: 'tcp://127.0.0.1:0',
    security,
    log,
    dataSource: options.dataSource,
    onEvent: (event: CoordinatorEvent) => {
      if (event.type === 'metrics' && !options.quiet) progress.update(event.progress)
      // A job that ended (or failed) takes no restarted worker.
      if (event.type === 'done' || event.type === 'failed') settled = true
    },
  })
  log(`[launcher] coordinator of job ${config.jobId} listens on ${coordinator.endpoint}; starting ${config.worldSize} worker(s) for ${config.task}.`)

  // The worker package loads tfjs: only for GPU jobs does the launcher need anything from it.
  const cudaVisibleDevicesFor = options.gpusPerNode > 0 ? (await import('@ringtrain/worker')).cudaVisibleDevicesFor : undefined
  const children = new Children((index, line) => {
    if (options.logWorkers !== false) log(`[worker ${index}] ${line}`)
  })
  // Elastic jobs: a lost local worker is started again (up to --max-restarts in all, as
  // torchrun does) and joins the running job at its next step boundary.
  let restartsLeft = config.minWorkers !== undefined ? options.maxRestarts ?? 3 : 0
  const startWorker = (localRank: number) => {
    const env: NodeJS.ProcessEnv = {
      // See Note [Receive buffers and malloc] (core/transport/zeromq-options.ts).
      GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456',
      ...process.env,
      RINGTRAIN_LOCAL_RANK: String(localRank),
      RINGTRAIN_LAUNCHER_PID: String(process.pid),
    }
    if (cudaVisibleDevicesFor) env['CUDA_VISIBLE_DEVICES'] = cudaVisibleDevicesFor(localRank, options.gpusPerNode)
    const keyArgs = ['--secret-file', keyPath, ...(options.encryptLocal ? ['--encrypt-local'] : [])]
    const { command, args } = workerCommand(['--coordinator', coordinator.endpoint, '--job-id', config.jobId, '--local-rank', String(localRank), ...keyArgs])
    const child = children.start(localRank, command, args, env)
    log(`[launcher] started worker ${localRank} (pid ${child.pid}).`)
    child.once('exit', (code, signal) => {
      coordinator.notifyWorkerExited(child.pid ?? -1, code, signal)
      if (settled || interruptedBy !== undefined || (code === 0 && signal === null) || restartsLeft <= 0) return
      restartsLeft--
      log(`[launcher] worker ${localRank} (pid ${child.pid}) ${signal !== null ? `was killed by ${signal}` : `exited with code ${code}`}; starting it again (${restartsLeft} restart(s) left).`)
      startWorker(localRank)
    })
  }
  for (let localRank = 0; localRank < config.worldSize; localRank++) startWorker(localRank)

  // The first signal stops gracefully: the ranks finish the step in flight and rank 0 writes
  // a checkpoint (workers started with RINGTRAIN_LAUNCHER_PID ignore a terminal's SIGINT, see commands/worker.ts); a second stops at once.
  let interruptedBy: NodeJS.Signals | undefined
  let hardStop = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (interruptedBy === undefined) {
      interruptedBy = signal
      log(`[launcher] got ${signal}; stopping at the next step boundary with a checkpoint (${signal} again stops at once).`)
      void coordinator.requestStop(`the launcher got ${signal}`)
      return
    }
    if (hardStop) return
    hardStop = true
    log(`[launcher] got ${signal} again; stopping the coordinator and ${config.worldSize} worker(s) now.`)
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
