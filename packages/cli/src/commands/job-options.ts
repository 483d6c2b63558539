/** Flags shared by `launch` and `coordinator`: what the job is, and its checks. */
import { randomBytes } from 'node:crypto'
import { resolve } from 'node:path'
import type { Argv } from 'yargs'
import { BACKEND_NAMES, ConfigError, ON_NONFINITE_MODES, newestCheckpoint, resolveJobConfig, type BackendName, type JobConfig, type OnNonFinite } from '@ringtrain/core'
import { resolveTaskPath } from '../launch/resolve-task.js'
import { createRunDir } from './out-dir.js'

export function withJobOptions<T>(y: Argv<T>) {
  return y
    .option('epochs', { type: 'number', describe: 'passes over the training data (default: the task\'s)' })
    .option('batch-size', { type: 'number', describe: 'samples per worker per step (default: the task\'s)' })
    .option('lr', { type: 'number', describe: 'learning rate; overrides the task\'s base rate' })
    .option('max-steps', { type: 'number', describe: 'stop after this many optimizer steps (default: all epochs)' })
    .option('seed', { type: 'number', default: 42, describe: 'seed for shuffling and initialization' })
    .option('backend', { choices: BACKEND_NAMES, default: 'auto' as const, describe: 'tfjs backend of every worker' })
    .option('out', { type: 'string', describe: 'output folder: metrics.jsonl, summary.json, model/ (default: a fresh runs/<UTC time>-<job id>, linked from runs/latest)' })
    .option('job-id', { type: 'string', describe: 'job id that workers must present (default: random)' })
    .option('heartbeat-interval-ms', { type: 'number', default: 1000, describe: 'how often workers report they are alive' })
    .option('heartbeat-max-missed', { type: 'number', default: 10, describe: 'missed heartbeats before a worker is declared lost' })
    .option('step-timeout-ms', { type: 'number', default: 60_000, describe: 'deadline of every collective wait' })
    .option('join-timeout-ms', { type: 'number', default: 300_000, describe: 'how long the coordinator waits for every worker to join' })
    .option('checkpoint-every', { type: 'number', describe: 'checkpoint every N optimizer steps into OUT/checkpoints (default: at the end of every epoch; 0: only at the end)' })
    .option('keep-checkpoints', { type: 'number', default: 3, describe: 'complete checkpoints to keep; older ones are removed' })
    .option('min-workers', { type: 'number', describe: 'elastic mode: a lost worker does not stop the job while at least this many are left; the others go on in a new round' })
    .option('max-workers', { type: 'number', describe: 'elastic mode: the most workers a round takes; later workers join at the next step boundary (default: -n)' })
    .option('elastic-timeout-ms', { type: 'number', default: 60_000, describe: 'elastic mode: how long a job below --min-workers waits for workers before it stops' })
    .option('resume', { type: 'string', describe: 'continue the run in this output folder from its newest complete checkpoint (outputs go there too)' })
    .option('on-nonfinite', { choices: ON_NONFINITE_MODES, default: 'stop' as const, describe: 'a step whose gradient holds NaN or Inf: stop the job naming the step and ranks, or skip that step on every rank' })
    .option('check-replicas-every', { type: 'number', default: 500, describe: 'compare parameter hashes across ranks every this many steps (0: never)' })
    .option('tensorboard', { type: 'string', describe: 'also write loss, learning rate, samples/s and evaluation as TensorBoard scalars into this folder (tensorboard --logdir DIR)' })
    .check((argv) => {
      const positive = (flag: string, value: unknown, integer = true) => {
        if (value === undefined) return
        if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
          throw new ConfigError(`--${flag} must be a positive ${integer ? 'integer' : 'number'}; got ${String(value)}.`, { flag, got: value })
        }
      }
      positive('epochs', argv['epochs'])
      positive('batch-size', argv['batch-size'])
      positive('lr', argv['lr'], false)
      positive('max-steps', argv['max-steps'])
      positive('heartbeat-interval-ms', argv['heartbeat-interval-ms'])
      positive('heartbeat-max-missed', argv['heartbeat-max-missed'])
      positive('step-timeout-ms', argv['step-timeout-ms'])
      positive('join-timeout-ms', argv['join-timeout-ms'])
      positive('keep-checkpoints', argv['keep-checkpoints'])
      positive('min-workers', argv['min-workers'])
      positive('max-workers', argv['max-workers'])
      positive('elastic-timeout-ms', argv['elastic-timeout-ms'])
      if (argv['max-workers'] !== undefined && argv['min-workers'] === undefined) {
        throw new ConfigError('--max-workers is for elastic jobs: give --min-workers too.', { flag: 'max-workers', got: argv['max-workers'] })
      }
      const most = (argv['max-workers'] as number | undefined) ?? (argv['workers'] as number | undefined)
      if (argv['min-workers'] !== undefined && most !== undefined && (argv['min-workers'] as number) > most) {
        throw new ConfigError(`--min-workers (${String(argv['min-workers'])}) must be at most --max-workers or -n (${most}).`, { flag: 'min-workers', expected: `≤ ${most}`, got: argv['min-workers'] })
      }
      const checkpointEvery = argv['checkpoint-every']
      if (checkpointEvery !== undefined && (typeof checkpointEvery !== 'number' || !Number.isInteger(checkpointEvery) || checkpointEvery < 0)) {
        throw new ConfigError(`--checkpoint-every must be an integer ≥ 0; got ${String(checkpointEvery)}.`, { flag: 'checkpoint-every', got: checkpointEvery })
      }
      const every = argv['check-replicas-every']
      if (every !== undefined && (!Number.isSafeInteger(every) || (every as number) < 0)) {
        throw new ConfigError(`--check-replicas-every must be a non-negative integer (0 turns the check off); got ${String(every)}.`, { flag: 'check-replicas-every', got: every })
      }
      const seed = argv['seed']
      if (!Number.isInteger(seed) || (seed as number) < 0) throw new ConfigError(`--seed must be a non-negative integer; got ${String(seed)}.`, { flag: 'seed', got: seed })
      return true
    })
}

export interface JobArgs {
  task: string
  workers: number
  epochs?: number
  'batch-size'?: number
  'max-steps'?: number
  lr?: number
  seed: number
  backend: BackendName
  /** Unset: a fresh run folder (see `jobConfigWithOutDir`). */
  out?: string
  'job-id'?: string
  'heartbeat-interval-ms': number
  'heartbeat-max-missed': number
  'step-timeout-ms': number
  'join-timeout-ms': number
  'checkpoint-every'?: number
  'keep-checkpoints'?: number
  resume?: string
  'min-workers'?: number
  'max-workers'?: number
  'elastic-timeout-ms'?: number
  'on-nonfinite'?: OnNonFinite
  'check-replicas-every'?: number
  tensorboard?: string
}

/**
 * The JobConfig the coordinator hands to every worker. Its `outDir` is `--out`; without it,
 * runs/latest, for callers that make no run folder (`jobConfigWithOutDir` makes one).
 */
export function jobConfigFrom(argv: JobArgs): JobConfig {
  const input = {
    jobId: argv['job-id'] ?? randomBytes(6).toString('hex'),
    worldSize: argv.workers,
    task: resolveTaskPath(argv.task),
    epochs: argv.epochs,
    batchSize: argv['batch-size'],
    maxSteps: argv['max-steps'],
    learningRate: argv.lr,
    seed: argv.seed,
    backend: argv.backend,
    outDir: resolve(argv.out ?? 'runs/latest'),
    heartbeatIntervalMs: argv['heartbeat-interval-ms'],
    heartbeatMaxMissed: argv['heartbeat-max-missed'],
    stepTimeoutMs: argv['step-timeout-ms'],
    joinTimeoutMs: argv['join-timeout-ms'],
    checkpointEvery: argv['checkpoint-every'],
    keepCheckpoints: argv['keep-checkpoints'],
    minWorkers: argv['min-workers'],
    maxWorkers: argv['min-workers'] === undefined ? undefined : (argv['max-workers'] ?? argv.workers),
    elasticTimeoutMs: argv['elastic-timeout-ms'],
    onNonFinite: argv['on-nonfinite'],
    checkReplicasEvery: argv['check-replicas-every'],
    taskOptions: {},
  }
  // Unset flags are left out, not sent as undefined: the task's defaults apply.
  return resolveJobConfig(Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as typeof input)
}

export function checkWorkers(argv: { workers?: unknown }): true {
  const n = argv.workers
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new ConfigError(`-n/--workers must be an integer ≥ 1; got ${String(n)}.`, { flag: 'workers', got: n })
  return true
}

/**
 * `--resume OUT`: the job writes to OUT and starts from its newest complete checkpoint.
 * Fails with a ConfigError when OUT holds none (naming the folder it looked in).
 */
export async function withResume(config: JobConfig, resumeArg: string | undefined, log: (line: string) => void): Promise<JobConfig> {
  if (resumeArg === undefined) return config
  const outDir = resolve(resumeArg)
  const found = await newestCheckpoint(outDir)
  if (found === undefined) {
    throw new ConfigError(`--resume ${resumeArg}: no complete checkpoint in ${resolve(outDir, 'checkpoints')} (a checkpoint is complete once its manifest.json is written).`, { flag: 'resume', expected: 'a folder with checkpoints/step-*/manifest.json', got: outDir })
  }
  log(`resuming from ${found.dir} (step ${found.manifest.step}, epoch ${found.manifest.position.epoch}); outputs go to ${outDir}.`)
  return resolveJobConfig({ ...config, outDir, resumeFrom: found.dir })
}

/**
 * `jobConfigFrom`, with the output folder settled: `--out` as given, or else a fresh
 * `runs/<UTC time>-<job id>` with `runs/latest` repointed at it (out-dir.ts). Made only after
 * the flags and the task checked out, so a run that cannot start makes no folder. Says
 * where the outputs go through `log`. Throws an `OutputWriteError` when the folder cannot be made.
 */
export async function jobConfigWithOutDir(argv: JobArgs, log: (line: string) => void, runsDir = resolve('runs')): Promise<JobConfig> {
  const config = jobConfigFrom(argv)
  // A resumed run continues in the folder it resumes (no new run folder).
  if (argv.resume !== undefined) return withResume(config, argv.resume, log)
  if (argv.out !== undefined) {
    log(`Outputs go to ${config.outDir} (--out).`)
    return config
  }
  const { runDir, latest } = await createRunDir(config.jobId, { runsDir, log })
  log(`Outputs go to ${runDir}${latest !== undefined ? `; ${latest} links to it` : ''}.`)
  return { ...config, outDir: runDir }
}
