/** `ringtrain coordinator TASK -n N`: only the coordinator, for jobs whose workers start elsewhere. */
import type { CommandModule } from 'yargs'
import { checkWorkers, jobConfigFrom, withJobOptions, type JobArgs } from './job-options.js'

export const coordinatorCommand: CommandModule<object, JobArgs & { bind: string }> = {
  command: 'coordinator <task>',
  describe: 'Run the coordinator of a job; start workers with `ringtrain worker --coordinator …`',
  builder: (y) =>
    withJobOptions(
      y
        .positional('task', { type: 'string', demandOption: true, describe: 'task module or folder; the same path must exist on every worker machine' })
        .option('workers', { alias: 'n', type: 'number', demandOption: true, describe: 'number of workers to wait for' })
        .option('bind', { type: 'string', default: 'tcp://127.0.0.1:29400', describe: 'endpoint to listen on (tcp://0.0.0.0:PORT for other machines)' })
        .option('job-id', { type: 'string', default: 'ringtrain', describe: 'job id that workers must present' })
        .check(checkWorkers),
    ) as never,
  handler: async (argv) => {
    const { startCoordinator } = await import('@ringtrain/coordinator')
    const config = jobConfigFrom(argv)
    const coordinator = await startCoordinator(config, { bind: argv.bind, log: (line: string) => process.stderr.write(`${line}\n`) })
    process.stderr.write(`[coordinator] job ${config.jobId} waits for ${config.worldSize} worker(s) on ${coordinator.endpoint}: run \`ringtrain worker --coordinator ${coordinator.endpoint} --job-id ${config.jobId}\` on each.\n`)
    const stop = (signal: string) => coordinator.stop(`the coordinator got ${signal}`)
    process.once('SIGINT', () => void stop('SIGINT'))
    process.once('SIGTERM', () => void stop('SIGTERM'))
    const result = await coordinator.done
    process.exitCode = result.exitCode
  },
}
