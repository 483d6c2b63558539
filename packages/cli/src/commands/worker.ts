/**
 * `ringtrain worker --coordinator tcp://HOST:PORT`: one worker, for multi-host jobs and for
 * schedulers (mpirun, srun, Kubernetes) that start the processes themselves.
 */
import type { CommandModule } from 'yargs'
import { BACKEND_NAMES, ConfigError } from '@ringtrain/core'
import { resolveTaskPath } from '../launch/resolve-task.js'
import { routedAddress } from './routed-address.js'
import { stopWithStdin } from './stop-with-stdin.js'
import { coordinatorFromEnvironment, localRankFromEnvironment, rankHintsFromEnvironment } from './scheduler-environment.js'
import { insecureWarning, jobSecurityFrom, withSecurityOptions, type SecurityArgs } from './security-options.js'

interface WorkerArgs extends SecurityArgs {
  coordinator?: string
  'job-id': string
  'local-rank'?: number
  rank?: number
  'world-size'?: number
  task?: string
  host?: string
  backend?: string
  'join-timeout-ms': number
  transport: 'auto' | 'tcp' | 'ipc'
  'data-port': number
  'stop-with-stdin': boolean
}


export const workerCommand: CommandModule<object, WorkerArgs> = {
  command: 'worker',
  describe: 'Run one worker that joins a coordinator',
  builder: (y) =>
    withSecurityOptions(y)
      .option('coordinator', { type: 'string', describe: 'coordinator endpoint, tcp://HOST:PORT (default: from RINGTRAIN_COORDINATOR, MASTER_ADDR/MASTER_PORT or SLURM_JOB_NODELIST)' })
      .option('job-id', { type: 'string', default: 'ringtrain', describe: 'the name of the job the coordinator runs' })
      .option('local-rank', { type: 'number', describe: 'rank among the workers of this machine (default: from RINGTRAIN_LOCAL_RANK, OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID)' })
      .option('rank', { type: 'number', describe: 'the rank this worker asks for (default: from RINGTRAIN_RANK, OMPI_COMM_WORLD_RANK, SLURM_PROCID, JOB_COMPLETION_INDEX or RANK); the coordinator gives it when no other worker holds it' })
      .option('world-size', { type: 'number', describe: "the number of workers its launcher started (default: from RINGTRAIN_WORLD_SIZE, OMPI_COMM_WORLD_SIZE, SLURM_NTASKS or WORLD_SIZE); the coordinator refuses the join when it runs another -n" })
      .option('task', { type: 'string', describe: "this machine's path of the task (default: the coordinator's path); ranks compare the task's fingerprint before step 0" })
      .option('backend', { choices: BACKEND_NAMES, describe: "this worker's tfjs backend (default: the job's --backend)" })
      .option('host', { type: 'string', describe: "address other workers reach this one on (default: this machine's address on the route to the coordinator)" })
      .option('transport', { choices: ['auto', 'tcp', 'ipc'] as const, default: 'auto' as const, describe: 'ring links: ipc to peers provably on this machine (same kernel, network and mount namespace) and tcp to the others (auto), tcp only, or ipc only (every peer on this machine)' })
      .option('data-port', { type: 'number', default: 0, describe: 'TCP port of this worker\'s data socket (0: any free one), for firewalls' })
      .option('stop-with-stdin', { type: 'boolean', default: false, describe: 'exit when stdin ends: for launchers that start the worker over ssh (launch --hosts), so that it ends with its connection' })
      .option('join-timeout-ms', { type: 'number', default: 330_000, describe: "how long to wait for the coordinator to assign a rank (keep it at least the coordinator's --join-timeout-ms)" })
      .check((argv) => {
        argv.coordinator ??= coordinatorFromEnvironment()
        if (argv.coordinator === undefined) throw new ConfigError('ringtrain worker needs the coordinator: --coordinator tcp://HOST:PORT, or RINGTRAIN_COORDINATOR, MASTER_ADDR (with MASTER_PORT) or a Slurm allocation (SLURM_JOB_NODELIST) in the environment.', { flag: 'coordinator', got: 'none' })
        if (!/^tcp:\/\/[^:\s]+:\d+$/.test(argv.coordinator)) throw new ConfigError(`--coordinator must look like tcp://HOST:PORT; got '${argv.coordinator}'.`, { flag: 'coordinator', got: argv.coordinator })
        const localRank = argv['local-rank']
        if (localRank !== undefined && (!Number.isInteger(localRank) || localRank < 0)) throw new ConfigError(`--local-rank must be a non-negative integer; got ${localRank}.`, { flag: 'local-rank', got: localRank })
        for (const flag of ['rank', 'world-size'] as const) {
          const value = argv[flag]
          if (value !== undefined && (!Number.isInteger(value) || value < (flag === 'rank' ? 0 : 1))) throw new ConfigError(`--${flag} must be ${flag === 'rank' ? 'a non-negative integer' : 'a positive integer'}; got ${value}.`, { flag, got: value })
        }
        if (argv.rank !== undefined && argv['world-size'] !== undefined && argv.rank >= argv['world-size']) throw new ConfigError(`--rank (${argv.rank}) must be below --world-size (${argv['world-size']}).`, { flag: 'rank', expected: `< ${argv['world-size']}`, got: argv.rank })
        const port = argv['data-port']
        if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`--data-port must be a port number 0-65535 (0: any free one); got ${port}.`, { flag: 'data-port', got: port })
        const joinTimeoutMs = argv['join-timeout-ms']
        if (!Number.isInteger(joinTimeoutMs) || joinTimeoutMs <= 0) throw new ConfigError(`--join-timeout-ms must be an integer greater than zero; got ${joinTimeoutMs}.`, { flag: 'join-timeout-ms', got: joinTimeoutMs })
        return true
      }) as never,
  handler: async (argv) => {
    const coordinator = argv.coordinator!
    const [, coordinatorHost, coordinatorPort] = /^tcp:\/\/([^:\s]+):(\d+)$/.exec(coordinator)!
    const host = argv.host ?? await routedAddress(coordinatorHost!, Number(coordinatorPort)).catch((error: Error) => {
      if (error instanceof ConfigError) throw error
      throw new ConfigError(`this machine has no route to the coordinator's ${coordinatorHost} (${error.message}); pass --host with the address other workers reach this one on.`, { flag: 'host', got: coordinatorHost })
    })
    if (argv.host === undefined && host !== '127.0.0.1') process.stderr.write(`[worker pid ${process.pid}] listens for its peers on ${host}, this machine's address on the route to the coordinator (--host to choose another).\n`)
    const security = jobSecurityFrom(argv, { who: 'worker', flag: '--host', value: host, host }, () => {
      throw new ConfigError('A worker needs the job\'s key: pass --secret-file FILE with the coordinator\'s key (the file given to the coordinator, or the one it printed when it made its own), or --insecure when the coordinator runs with --insecure.', { flag: 'secret-file', expected: '--secret-file or --insecure', got: 'neither' })
    })
    if (security.mode === 'insecure') process.stderr.write(`[worker pid ${process.pid}] ${insecureWarning('worker', `its data socket on ${host}`)}\n`)
    if (argv['stop-with-stdin']) stopWithStdin()
    // A terminal's Ctrl-C reaches the launcher's whole process group: the launcher turns the
    // first into a graceful stop through the coordinator, so its workers must not die of it.
    if (process.env['RINGTRAIN_LAUNCHER_PID'] !== undefined) {
      process.on('SIGINT', () => process.stderr.write(`[worker pid ${process.pid}] got SIGINT; the launcher (pid ${process.env['RINGTRAIN_LAUNCHER_PID']}) stops the job.\n`))
    }
    const hints = argv.rank !== undefined || argv['world-size'] !== undefined
      ? { rank: argv.rank, worldSize: argv['world-size'], source: [argv.rank !== undefined ? '--rank' : '', argv['world-size'] !== undefined ? '--world-size' : ''].filter(Boolean).join('/') }
      : rankHintsFromEnvironment()
    const { runWorker } = await import('@ringtrain/worker')
    process.exitCode = await runWorker({
      coordinator,
      jobId: argv['job-id'],
      security,
      localRank: argv['local-rank'] ?? localRankFromEnvironment(),
      rankHint: hints.rank,
      worldSizeHint: hints.worldSize,
      hintSource: hints.source,
      task: argv.task !== undefined ? resolveTaskPath(argv.task) : undefined,
      host,
      backend: argv.backend,
      joinTimeoutMs: argv['join-timeout-ms'],
      transport: argv.transport,
      dataPort: argv['data-port'],
    })
  },
}
