/** `ringtrain bench <allreduce|compute|scaling>`: benchmarks that print figures (JSON lines with --json). */
import type { CommandModule } from 'yargs'

export const benchCommand: CommandModule = {
  command: 'bench <kind> [task]',
  describe: 'Run a benchmark: allreduce (ring all-reduce over ZeroMQ), compute (ms per training step per backend), scaling (samples/s against worker count), recovery (checkpoint stall)',
  builder: (y) =>
    y
      .positional('kind', { choices: ['allreduce', 'compute', 'scaling', 'recovery'] as const, demandOption: true })
      .positional('task', { type: 'string', describe: 'task module (scaling); recovery: mnist-cnn or mlp-25m only' })
      .option('workers', { type: 'string', default: '2,4', describe: 'comma-separated worker counts' })
      .option('sizes', { type: 'string', default: '1MiB,16MiB,64MiB', describe: 'comma-separated buffer sizes (allreduce)' })
      .option('iterations', { type: 'number', default: 20, describe: 'timed iterations per case, after warm-up (at least 10)' })
      .option('steps', { type: 'number', default: 200, describe: 'training steps (scaling)' })
      .option('secure', { choices: ['on', 'off'] as const, default: 'on' as const, describe: 'allreduce: ranks hold a job key (as jobs do), or none' })
      .option('encrypt-local', { type: 'boolean', default: false, describe: 'allreduce: encrypt the same-host ring too' })
      .option('link', { choices: ['ipc', 'tcp'] as const, default: 'ipc' as const, describe: 'allreduce: same-host ranks talk over ipc (as jobs do) or loopback tcp' })
      .option('testbed-hosts', { type: 'number', describe: 'allreduce, scaling: run one rank (worker) per emulated host of a test bed of this many hosts (scripts/testbed.sh; needs root), over tcp' })
      .option('link-mbit', { type: 'number', describe: 'with --testbed-hosts: the rate of every link, Mbit/s both ways (tbf); allreduce then reports boundMs, the ring\'s time at that rate' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON line per case' }),
  handler: async (argv) => {
    const kind = argv['kind'] as string
    const module =
      kind === 'allreduce' ? await import('../bench/allreduce.js')
      : kind === 'compute' ? await import('../bench/compute.js')
      : kind === 'recovery' ? await import('../bench/recovery.js')
      : await import('../bench/scaling.js')
    await module.run(argv as Record<string, unknown>)
  },
}
