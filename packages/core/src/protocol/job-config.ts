/**
 * The configuration of one training job. The coordinator owns it and sends it to every
 * worker inside its `Assignment`, so all ranks train with the same settings.
 */
import { ConfigError } from '../errors.js'

/**
 * The compute backends a job or a worker may ask for: `auto` picks the fastest that starts
 * (tensorflow, then webgpu, then wasm, then cpu). The one list the CLI's flags, the job
 * config and the worker's backend selection all use.
 */
export const BACKEND_NAMES = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const
export type BackendName = (typeof BACKEND_NAMES)[number]

export interface JobConfig {
  /** Names the job; every control message carries it, and a worker of another job is refused. */
  jobId: string
  /** Number of workers (ranks) the job waits for before it starts. */
  worldSize: number
  /** Module path of the task (the file that calls `defineTask`). */
  task: string
  /** Passes over the training data; unset = the task's own default. */
  epochs?: number
  /** Samples per step on each worker (the global batch is `batchSize × worldSize`); unset = the task's. */
  batchSize?: number
  /** Stop after this many optimizer steps even mid-epoch (benchmarks, tests); unset = run all epochs. */
  maxSteps?: number
  /** Overrides the task's learning rate when set. */
  learningRate?: number
  /** Seeds shuffling and weight initialisation on every rank. */
  seed: number
  /** Compute backend of every worker (one of BACKEND_NAMES), unless a worker is started with its own. */
  backend: BackendName
  /** Folder for metrics.jsonl, summary.json, checkpoints and traces. */
  outDir: string
  heartbeatIntervalMs: number
  /** A worker whose last heartbeat is older than `heartbeatIntervalMs × heartbeatMaxMissed` is lost. */
  heartbeatMaxMissed: number
  /** Deadline of every blocking wait inside one training step. */
  stepTimeoutMs: number
  /** How long the coordinator waits for all `worldSize` workers to join before it gives up. */
  joinTimeoutMs: number
  /**
   * What a step whose gradient holds NaN or Inf does (docs/design.md, "Non-finite gradients
   * and replica checks"): `stop` fails the job naming the step and the ranks, `skip` skips
   * that optimizer step on every rank and counts it.
   */
  onNonFinite: OnNonFinite
  /** Every this many optimizer steps the ranks compare parameter hashes; 0 = never. */
  checkReplicasEvery: number
  /** Passed through to the task untouched. */
  taskOptions: Record<string, unknown>
  /**
   * A checkpoint every this many optimizer steps; unset = at the end of every epoch; 0 = only
   * at the end of the job (and on a graceful stop).
   */
  checkpointEvery?: number
  /** Complete checkpoints kept in outDir/checkpoints; older ones are removed. */
  keepCheckpoints: number
  /** The checkpoint directory to resume from (set by the coordinator for `--resume`). */
  resumeFrom?: string
  /**
   * Elastic mode when set: a lost worker no longer ends the job; the others go on in a new
   * round as long as at least this many are left (docs/design.md, "Elastic rounds").
   */
  minWorkers?: number
  /** Elastic mode: the most workers a round takes (later joiners wait); default worldSize. */
  maxWorkers?: number
  /** Elastic mode: how long a job below minWorkers waits for workers before it stops. */
  elasticTimeoutMs: number
  /**
   * The token the coordinator wrote into `outDir/.ringtrain-out`: rank 0 writes checkpoints
   * and the model there itself only when it reads the same token (the folder is the
   * coordinator's, on a shared file system); otherwise it streams them to the coordinator.
   */
  outToken?: string
  /**
   * `--serve-data`: the coordinator reads the task's data sets and sends each worker the
   * samples of its shard (DataRequest, DataChunk); workers never call the task's loaders.
   */
  serveData?: boolean
}

/** The values of `JobConfig.onNonFinite` (and of `--on-nonfinite`). */
export const ON_NONFINITE_MODES = ['stop', 'skip'] as const
export type OnNonFinite = (typeof ON_NONFINITE_MODES)[number]

/** What a caller must give; everything else has a default. */
export type JobConfigInput = Pick<JobConfig, 'jobId' | 'worldSize' | 'task' | 'outDir'> & Partial<JobConfig>

export const JOB_CONFIG_DEFAULTS = {
  seed: 0,
  backend: 'auto',
  heartbeatIntervalMs: 1000,
  heartbeatMaxMissed: 5,
  stepTimeoutMs: 60_000,
  joinTimeoutMs: 300_000,
  keepCheckpoints: 3,
  elasticTimeoutMs: 60_000,
  onNonFinite: 'stop',
  checkReplicasEvery: 500,
} as const

/** Fills in the defaults and checks every field; throws a `ConfigError` naming the field and the rule. */
export function resolveJobConfig(input: JobConfigInput): JobConfig {
  const config: JobConfig = { ...JOB_CONFIG_DEFAULTS, taskOptions: {}, ...input }
  const problem = jobConfigProblem(config)
  if (problem !== undefined) throw new ConfigError(`Invalid job configuration: ${problem}`, { got: config })
  return config
}

const POSITIVE_INTEGERS = ['worldSize', 'heartbeatIntervalMs', 'heartbeatMaxMissed', 'stepTimeoutMs', 'joinTimeoutMs', 'keepCheckpoints', 'elasticTimeoutMs'] as const
const OPTIONAL_POSITIVE_INTEGERS = ['epochs', 'batchSize', 'maxSteps', 'minWorkers', 'maxWorkers'] as const
const STRINGS = ['jobId', 'task', 'backend', 'outDir'] as const

/**
 * Returns a sentence naming the first field that breaks its rule, or undefined when `value`
 * is a valid JobConfig. Used by `resolveJobConfig` and by the validator of `Assignment`.
 */
export function jobConfigProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `expected an object, got ${describe(value)}.`
  const config = value as Record<string, unknown>
  for (const key of STRINGS) {
    if (typeof config[key] !== 'string' || config[key] === '') return `${key} must be a non-empty string, got ${describe(config[key])}.`
  }
  for (const key of POSITIVE_INTEGERS) {
    const x = config[key]
    if (!Number.isInteger(x) || (x as number) < 1) return `${key} must be an integer greater than zero, got ${describe(x)}.`
  }
  for (const key of OPTIONAL_POSITIVE_INTEGERS) {
    const x = config[key]
    if (x !== undefined && (!Number.isInteger(x) || (x as number) < 1)) return `${key} must be an integer greater than zero when set, got ${describe(x)}.`
  }
  const checkpointEvery = config.checkpointEvery
  if (checkpointEvery !== undefined && (!Number.isInteger(checkpointEvery) || (checkpointEvery as number) < 0)) return `checkpointEvery must be an integer of at least 0 when set, got ${describe(checkpointEvery)}.`
  if (config.resumeFrom !== undefined && (typeof config.resumeFrom !== 'string' || config.resumeFrom === '')) return `resumeFrom must be a non-empty string when set, got ${describe(config.resumeFrom)}.`
  const most = (config.maxWorkers ?? config.worldSize) as number
  if (config.minWorkers !== undefined && (config.minWorkers as number) > most) return `minWorkers (${describe(config.minWorkers)}) must be at most maxWorkers (${describe(config.maxWorkers ?? config.worldSize)}).`
  if (config.maxWorkers !== undefined && config.minWorkers === undefined) return `maxWorkers is for elastic jobs: set minWorkers too.`
  if (!Number.isInteger(config.seed)) return `seed must be an integer, got ${describe(config.seed)}.`
  if (!(BACKEND_NAMES as readonly unknown[]).includes(config.backend)) return `backend must be one of ${BACKEND_NAMES.join(', ')}, got ${describe(config.backend)}.`
  if (!(ON_NONFINITE_MODES as readonly unknown[]).includes(config.onNonFinite)) return `onNonFinite must be one of ${ON_NONFINITE_MODES.join(', ')}, got ${describe(config.onNonFinite)}.`
  const every = config.checkReplicasEvery
  if (!Number.isSafeInteger(every) || (every as number) < 0) return `checkReplicasEvery must be an integer of at least zero (0 turns the check off), got ${describe(every)}.`
  const rate = config.learningRate
  if (rate !== undefined && (typeof rate !== 'number' || !(rate > 0) || !Number.isFinite(rate))) {
    return `learningRate must be a finite number greater than zero when set, got ${describe(rate)}.`
  }
  if (config.serveData !== undefined && typeof config.serveData !== 'boolean') return `serveData must be true or false when set, got ${describe(config.serveData)}.`
  const options = config.taskOptions
  if (typeof options !== 'object' || options === null || Array.isArray(options)) return `taskOptions must be an object, got ${describe(options)}.`
  return undefined
}

/** A short description of a value for error messages: `"abc"`, `42`, `an array of 3`, `null`. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return `an array of ${value.length}`
  if (value instanceof Uint8Array) return `${value.byteLength} bytes`
  if (typeof value === 'object') return 'an object'
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
  return String(value)
}
