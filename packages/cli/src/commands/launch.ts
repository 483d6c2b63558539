/**
 * `ringtrain launch -n N TASK`: a coordinator in this process and N local workers; with
 * `--hosts h1:2,h2:2` or `--hostfile FILE`, workers on those machines too, started over ssh
 * (launch/ssh-workers.ts). A first Ctrl-C or SIGTERM stops gracefully (the step in flight
 * finishes, rank 0 writes a checkpoint); a second one stops every process at once. The exit
 * code says whether the job succeeded (0), failed (1), or was interrupted (130 / 143).
 */
import { availableParallelism } from 'node:os'
import type { CommandModule } from 'yargs'
import { ConfigError } from '@ringtrain/core'
import { parseHostList, placeWorkers, readHostfile, type HostSlots } from '../launch/remote-hosts.js'
import { DEFAULT_SSH_COMMAND, remoteEnvironment, splitCommandLine } from '../launch/ssh-workers.js'
import { serveDataOption, withServedData } from './serve-data.js'
import { checkWorkers, jobConfigWithOutDir, withJobOptions, type JobArgs } from './job-options.js'
import { hostOf, isLoopbackHost } from './security-options.js'

interface LaunchArgs extends JobArgs {
  'gpus-per-node': number
  quiet: boolean
  'encrypt-local': boolean
  'max-restarts': number
  hosts?: string
  hostfile?: string
  'ssh-command': string
  'remote-command'?: string
  bind?: string
  env?: string[]
  'serve-data': boolean
}

export const launchCommand: CommandModule<object, LaunchArgs> = {
  command: 'launch <task>',
  describe: 'Start a coordinator and N workers (local, or over ssh with --hosts) that train TASK data-parallel',
  builder: (y) =>
    withJobOptions(
      y
        .positional('task', { type: 'string', demandOption: true, describe: 'task module or folder (default-exports defineTask)' })
        .option('workers', { alias: 'n', type: 'number', describe: 'number of worker processes (with --hosts/--hostfile: default all their slots)' })
        .option('hosts', { alias: 'H', type: 'string', describe: 'machines and their workers, as horovodrun -H: h1:2,h2:2 (localhost or this machine runs local workers; others over ssh)' })
        .option('hostfile', { type: 'string', describe: "a file of machines, one a line: 'h1 slots=2' or 'h1:2' (mpirun's hostfile)" })
        .option('ssh-command', { type: 'string', default: DEFAULT_SSH_COMMAND, describe: 'how to reach the other machines, e.g. "ssh -p 2222 -i key" (-T, the host and the command are added)' })
        .option('remote-command', { type: 'string', describe: "how the other machines run ringtrain, as shell words (default: this launcher's node, tsx and CLI by the same absolute paths)" })
        .option('bind', { type: 'string', describe: "the coordinator's endpoint tcp://HOST:PORT (default: 127.0.0.1, or with other machines this one's address on the route to the first of them, any port)" })
        .option('env', { alias: 'x', type: 'string', array: true, describe: 'environment variable for the workers on other machines, as mpirun -x: NAME (its value here) or NAME=VALUE (not for secrets: it is on their command line)' })
        .option('gpus-per-node', { type: 'number', default: 0, describe: 'GPUs on each machine; each worker gets one through CUDA_VISIBLE_DEVICES' })
        .option('quiet', { type: 'boolean', default: false, describe: 'no progress bar, only the summary' })
        .option('max-restarts', { type: 'number', default: 3, describe: 'elastic mode (--min-workers): lost workers are started again, this many times in all' })
        .option('encrypt-local', { type: 'boolean', default: false, describe: 'encrypt the ring between the workers of one machine too (they authenticate with the job key either way)' })
        .option('serve-data', serveDataOption)
        .check(checkHosts)
        .check(checkWorkers),
    ) as never,
  handler: async (argv) => {
    const { launch } = await import('../launch/launch.js')
    const log = (line: string) => process.stderr.write(`[launcher] ${line}\n`)
    const { config, dataSource } = await withServedData(await jobConfigWithOutDir(argv, log), argv['serve-data'], log)
    const cores = availableParallelism()
    if (argv.hosts === undefined && argv.hostfile === undefined && argv.workers > cores) process.stderr.write(`[launcher] warning: -n ${argv.workers} starts more workers than this machine has CPU cores (${cores}); they share the cores, so each step computes slower than with ${cores} or fewer workers.\n`)
    process.exitCode = await launch(config, {
      gpusPerNode: argv['gpus-per-node'],
      quiet: argv.quiet,
      encryptLocal: argv['encrypt-local'],
      maxRestarts: argv['max-restarts'],
      hosts: hostsOf(argv),
      sshCommand: argv['ssh-command'],
      remoteCommand: argv['remote-command'],
      bind: argv.bind,
      remoteEnv: argv.env,
      tensorboardDir: argv.tensorboard,
      dataSource,
    })
  },
}

function hostsOf(argv: { hosts?: string; hostfile?: string }): HostSlots[] | undefined {
  if (argv.hosts !== undefined) return parseHostList(argv.hosts)
  if (argv.hostfile !== undefined) return readHostfile(argv.hostfile)
  return undefined
}

/** --hosts/--hostfile: -n defaults to their slots and may not exceed them; other machines need a reachable --bind. */
function checkHosts(argv: Partial<LaunchArgs>): true {
  if (argv.hosts !== undefined && argv.hostfile !== undefined) throw new ConfigError('--hosts and --hostfile both name the machines: pass one of them.', { flag: 'hosts', expected: 'one of --hosts, --hostfile', got: 'both' })
  splitCommandLine(argv['ssh-command'] ?? DEFAULT_SSH_COMMAND, 'ssh-command')
  remoteEnvironment(argv.env ?? [])
  if (argv['remote-command']?.trim() === '') throw new ConfigError("--remote-command is empty: expected how the other machines run ringtrain, e.g. 'npx ringtrain'.", { flag: 'remote-command', expected: 'a command', got: '' })
  if (argv.bind !== undefined && !/^tcp:\/\/[^:\s/]+:\d+$/.test(argv.bind)) throw new ConfigError(`--bind must look like tcp://HOST:PORT (port 0: any free one); got '${argv.bind}'.`, { flag: 'bind', expected: 'tcp://HOST:PORT', got: argv.bind })
  const hosts = hostsOf(argv)
  if (hosts === undefined) {
    if (argv.workers === undefined) throw new ConfigError('launch needs the number of workers: -n N, or the machines with --hosts h1:2,h2:2 or --hostfile FILE.', { flag: 'workers', expected: '-n, --hosts or --hostfile', got: 'none' })
    return true
  }
  argv.workers ??= hosts.reduce((sum, h) => sum + h.slots, 0)
  const remote = placeWorkers(hosts, argv.workers).filter((p) => !p.local)
  if (remote.length > 0 && argv.bind !== undefined && isLoopbackHost(hostOf(argv.bind))) {
    throw new ConfigError(`--bind ${argv.bind} is a loopback address, which the workers on ${remote[0]!.host} cannot reach: bind an address of this machine they reach, or leave --bind out.`, { flag: 'bind', expected: 'an address other machines reach', got: argv.bind })
  }
  return true
}
