/**
 * `ringtrain launch -n N TASK`: a coordinator in this process and N local workers.
 * A first Ctrl-C or SIGTERM stops gracefully (the step in flight finishes, rank 0 writes a
 * checkpoint); a second one stops every process at once. The exit code says whether the job
 * succeeded (0), failed (1), or was interrupted (130 / 143).
 */
import type { CommandModule } from 'yargs'
import { serveDataOption, withServedData } from './serve-data.js'
import { checkWorkers, jobConfigWithOutDir, withJobOptions, type JobArgs } from './job-options.js'

export const launchCommand: CommandModule<object, JobArgs & { 'gpus-per-node': number; quiet: boolean; 'encrypt-local': boolean; 'max-restarts': number; 'serve-data': boolean }> = {
  command: 'launch <task>',
  describe: 'Start a coordinator and N local workers that train TASK data-parallel',
  builder: (y) =>
    withJobOptions(
      y
        .positional('task', { type: 'string', demandOption: true, describe: 'task module or folder (default-exports defineTask)' })
        .option('workers', { alias: 'n', type: 'number', demandOption: true, describe: 'number of local worker processes' })
        .option('gpus-per-node', { type: 'number', default: 0, describe: 'GPUs on this machine; each worker gets one through CUDA_VISIBLE_DEVICES' })
        .option('quiet', { type: 'boolean', default: false, describe: 'no progress bar, only the summary' })
        .option('max-restarts', { type: 'number', default: 3, describe: 'elastic mode (--min-workers): lost local workers are started again, this many times in all' })
        .option('serve-data', serveDataOption)
        .option('encrypt-local', { type: 'boolean', default: false, describe: 'encrypt the ring between the workers too (they authenticate with the job key either way)' })
        .check(checkWorkers),
    ) as never,
  handler: async (argv) => {
    const { launch } = await import('../launch/launch.js')
    const log = (line: string) => process.stderr.write(`[launcher] ${line}\n`)
    const { config, dataSource } = await withServedData(await jobConfigWithOutDir(argv, log), argv['serve-data'], log)
    process.exitCode = await launch(config, { gpusPerNode: argv['gpus-per-node'], quiet: argv.quiet, encryptLocal: argv['encrypt-local'], maxRestarts: argv['max-restarts'], dataSource })
  },
}
