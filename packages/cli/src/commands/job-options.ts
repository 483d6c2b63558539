/** Flags shared by `launch` and `coordinator`: what the job is, and its checks. */
import { randomBytes } from 'node:crypto'
import { resolve } from 'node:path'
import type { Argv } from 'yargs'
import { BACKEND_NAMES, ConfigError, resolveJobConfig, type BackendName, type JobConfig } from '@ringtrain/core'
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
 * `jobConfigFrom`, with the output folder settled: `--out` as given, or else a fresh
 * `runs/<UTC time>-<job id>` with `runs/latest` repointed at it (out-dir.ts). Made only after
 * the flags and the task checked out, so a run that cannot start makes no folder. Says
 * where the outputs go through `log`. Throws an `OutputWriteError` when the folder cannot be made.
 */
export async function jobConfigWithOutDir(argv: JobArgs, log: (line: string) => void, runsDir = resolve('runs')): Promise<JobConfig> {
  const config = jobConfigFrom(argv)
  if (argv.out !== undefined) {
    log(`Outputs go to ${config.outDir} (--out).`)
    return config
  }
  const { runDir, latest } = await createRunDir(config.jobId, { runsDir, log })
  log(`Outputs go to ${runDir}${latest !== undefined ? `; ${latest} links to it` : ''}.`)
  return { ...config, outDir: runDir }
}
