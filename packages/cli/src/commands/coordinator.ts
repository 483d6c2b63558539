/** `ringtrain coordinator TASK -n N`: only the coordinator, for jobs whose workers start elsewhere. */
import { networkInterfaces } from 'node:os'
import type { CommandModule } from 'yargs'
import { generateJobKey, writePrivateKeyFile } from '@ringtrain/core'
import { ProgressBar } from '../launch/progress.js'
import { checkWorkers, jobConfigWithOutDir, withJobOptions, type JobArgs } from './job-options.js'
import { serveDataOption, withServedData } from './serve-data.js'
import { hostOf, insecureWarning, jobSecurityFrom, withSecurityOptions, type SecurityArgs } from './security-options.js'

export const coordinatorCommand: CommandModule<object, JobArgs & SecurityArgs & { bind: string; 'serve-data': boolean }> = {
  command: 'coordinator <task>',
  describe: 'Run the coordinator of a job; start workers with `ringtrain worker --coordinator …`',
  builder: (y) =>
    withSecurityOptions(withJobOptions(
      y
        .positional('task', { type: 'string', demandOption: true, describe: 'task module or folder; the same path must exist on every worker machine' })
        .option('workers', { alias: 'n', type: 'number', demandOption: true, describe: 'number of workers to wait for' })
        .option('bind', { type: 'string', default: 'tcp://127.0.0.1:29400', describe: 'endpoint to listen on; another machine\'s workers need an address of this one (and --secret-file)' })
        .option('job-id', { type: 'string', default: 'ringtrain', describe: 'name of the job, which workers must present (a name, not a secret)' })
        .option('serve-data', serveDataOption)
        .check(checkWorkers),
    )) as never,
  handler: async (argv) => {
    const { startCoordinator } = await import('@ringtrain/coordinator')
    // Without --secret-file on loopback: a key of its own, in a private file for this machine's workers.
    let ownKey: { path: string; remove(): void } | undefined
    const security = jobSecurityFrom(argv, { who: 'coordinator', flag: '--bind', value: argv.bind, host: hostOf(argv.bind) }, () => {
      const key = generateJobKey()
      ownKey = writePrivateKeyFile(key)
      return { mode: 'key', key }
    })
    // The first signal stops gracefully (a checkpoint at the next step boundary), a second at
    // once. Listening from the start: a signal that comes while the coordinator starts is kept.
    let coordinator: Awaited<ReturnType<typeof startCoordinator>> | undefined
    let interruptedBy: NodeJS.Signals | undefined
    let signals = 0
    const act = () => {
      if (coordinator === undefined || interruptedBy === undefined) return
      if (signals === 1) void coordinator.requestStop(`the coordinator got ${interruptedBy}`)
      else void coordinator.stop(`the coordinator got ${interruptedBy} twice`)
    }
    const onSignal = (signal: NodeJS.Signals) => {
      interruptedBy ??= signal
      signals++
      process.stderr.write(signals === 1
        ? `[coordinator] got ${signal}: stopping at the next step boundary with a checkpoint; ${signal} again stops at once.\n`
        : `[coordinator] got ${signal} again: stopping now.\n`)
      if (coordinator === undefined && signals > 1) {
        ownKey?.remove()
        process.exit(interruptedBy === 'SIGINT' ? 130 : 143)
      }
      act()
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    try {
      // Inside the try: a run folder that cannot be made still removes the key file.
      const { config, dataSource } = await withServedData(await jobConfigWithOutDir(argv, (line) => process.stderr.write(`[coordinator] ${line}\n`)), argv['serve-data'], (line) => process.stderr.write(`[coordinator] ${line}\n`))
      if (security.mode === 'insecure') process.stderr.write(`[coordinator] ${insecureWarning('coordinator', argv.bind)}\n`)
      // Progress as launch shows it: a bar on a terminal, a plain line every few seconds otherwise.
      const progress = new ProgressBar()
      coordinator = await startCoordinator(config, {
        bind: argv.bind, security, log: (line: string) => progress.log(line), tensorboardDir: argv.tensorboard, dataSource,
        onEvent: (event) => {
          if (event.type === 'metrics') progress.update(event.progress)
          if (event.type === 'done' || event.type === 'failed') progress.finish()
        },
      })
      const keyFlag = security.mode === 'insecure' ? ' --insecure' : ` --secret-file ${ownKey?.path ?? argv['secret-file']}`
      // Listening on every interface: name one that other machines can use, so the command runs as printed.
      const endpoint = coordinator.endpoint.replace(/^tcp:\/\/(0\.0\.0\.0|\[::\]):/, `tcp://${externalAddress() ?? 'ADDRESS-OF-THIS-MACHINE'}:`)
      process.stderr.write(`[coordinator] job ${config.jobId} waits for ${config.worldSize} worker(s) on ${coordinator.endpoint}: run \`ringtrain worker --coordinator ${endpoint} --job-id ${config.jobId}${keyFlag}\` on each.\n`)
      if (ownKey) process.stderr.write(`[coordinator] No --secret-file: made a job key for this run at ${ownKey.path} (removed at exit); workers on this machine pass it with --secret-file.\n`)
      act()
      const result = await coordinator.done
      process.exitCode = interruptedBy === undefined ? result.exitCode : interruptedBy === 'SIGINT' ? 130 : 143
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      ownKey?.remove()
    }
  },
}

/** The first IPv4 address of this machine that is not loopback, if any. */
function externalAddress(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address
  }
  return undefined
}
