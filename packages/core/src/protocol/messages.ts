/**
 * Control-plane messages between the coordinator (ROUTER) and the workers (DEALER). Each is
 * a msgpack map with a stable numeric `type`, the sender's `version` (PROTOCOL_VERSION) and
 * the `jobId`. Gradients never travel here: they go worker to worker on the data plane.
 *
 * The `type` values are the wire format, as in Horovod's `Request::ALLREDUCE = 0`: never
 * renumber one; add new messages at the end and bump PROTOCOL_VERSION for incompatible
 * changes. The comment above each message reads sender → receiver: purpose.
 */
import type { WireError } from '../errors.js'
import type { JobConfig } from './job-config.js'
import { PROTOCOL_VERSION } from './version.js'

export const MessageType = {
  JoinRequest: 1,
  Assignment: 2,
  Reject: 3,
  Heartbeat: 4,
  BarrierRequest: 5,
  BarrierRelease: 6,
  StepMetrics: 7,
  WorkerDone: 8,
  WorkerFailed: 9,
  Abort: 10,
  Shutdown: 11,
  KeepAlive: 12,
  Alive: 13,
  StopRequest: 14,
  Regroup: 15,
  OutputPart: 16,
  OutputCommit: 17,
  OutputAck: 18,
  OutputRequest: 19,
  DataRequest: 20,
  DataChunk: 21,
} as const
export type MessageType = (typeof MessageType)[keyof typeof MessageType]

/** The name of a message type, for logs: `messageTypeName(4) === 'Heartbeat'`. */
export function messageTypeName(type: number): string {
  return Object.entries(MessageType).find(([, value]) => value === type)?.[0] ?? `unknown type ${type}`
}

interface Envelope<T extends MessageType> {
  type: T
  /** PROTOCOL_VERSION of the sender. */
  version: number
  jobId: string
}

/** worker → coordinator: asks to take part in the job; answered by Assignment or Reject. */
export interface JoinRequest extends Envelope<typeof MessageType.JoinRequest> {
  host: string
  pid: number
  /** Set when a launcher or scheduler (mpirun, srun) already numbered the workers of a host. */
  localRank?: number
  /**
   * The global rank a scheduler gave this process (SLURM_PROCID, OMPI_COMM_WORLD_RANK,
   * JOB_COMPLETION_INDEX, RANK, or --rank): the coordinator gives it that rank when it can.
   */
  rankHint?: number
  /** The number of workers the scheduler started (SLURM_NTASKS, WORLD_SIZE, …): checked against the job's. */
  worldSizeHint?: number
  /** Where the hints came from, for messages: 'SLURM_PROCID/SLURM_NTASKS', '--rank'. */
  hintSource?: string
  /** Addresses where this worker's ring transport listens. */
  dataEndpoints: string[]
  /**
   * Compute backend the worker was started with, when it was given one. Usually absent: the
   * backend follows the JobConfig, and ranks compare the one they selected before step 0.
   */
  backend?: string
  /**
   * A random secret of this worker's liveness thread: its Alive messages carry it, and the
   * coordinator counts them as this worker's sign of life (see Alive). Sent only over this
   * authenticated connection, never logged.
   */
  livenessToken?: string
}

/** coordinator → worker: the worker's place in the ring, sent when all workers have joined. */
export interface Assignment extends Envelope<typeof MessageType.Assignment> {
  rank: number
  worldSize: number
  localRank: number
  localWorldSize: number
  round: number
  /** `peers[r]` holds the dataEndpoints of rank r, in ring order. */
  peers: string[][]
  /** `hosts[r]` is the host of rank r. */
  hosts: string[]
  config: JobConfig
  /**
   * Elastic rounds after the first: the rank whose state (weights, optimizer, step, data
   * position) every rank takes by broadcast before training on; a rank of the previous round.
   */
  stateFrom?: number
}
/** The answer to a JoinRequest that admits the worker (PyTorch's name for it). */
export type JoinResponse = Assignment

/** coordinator → worker: the join was refused (other version, other job, job full or running). */
export interface Reject extends Envelope<typeof MessageType.Reject> {
  error: WireError
}

/** worker → coordinator: proof of life, every `heartbeatIntervalMs`. */
export interface Heartbeat extends Envelope<typeof MessageType.Heartbeat> {
  rank: number
  round: number
  /** The optimizer step the worker is computing (0-based). */
  step: number
}

/** worker → coordinator: the worker reached barrier `name` and waits for the others. */
export interface BarrierRequest extends Envelope<typeof MessageType.BarrierRequest> {
  rank: number
  round: number
  name: string
}

/** coordinator → workers: every rank reached barrier `name`; go on. */
export interface BarrierRelease extends Envelope<typeof MessageType.BarrierRelease> {
  round: number
  name: string
}

/** worker → coordinator: what one step cost on one rank. */
export interface StepMetrics extends Envelope<typeof MessageType.StepMetrics> {
  rank: number
  round: number
  /** The optimizer step this report is about (0-based). */
  step: number
  epoch: number
  loss: number
  /** The learning rate the step's optimizer update used (the schedule's, scaled by --lr). */
  learningRate: number
  /** Samples this rank trained on in this step. */
  samples: number
  computeMs: number
  allReduceMs: number
  bytesSent: number
  /** Steps of the whole job (epochs × steps per epoch), for progress bars; optional. */
  totalSteps?: number
  /** Epochs of the whole job, for progress bars; optional. */
  epochs?: number
  /**
   * Optimizer steps skipped so far (this one included) because a gradient held NaN or Inf
   * (`--on-nonfinite skip`); the same on every rank. Absent from older workers.
   */
  skippedSteps?: number
}

/** A metric summed over a rank's share of the evaluation set; the job's value is Σsum / Σcount. */
export interface MetricSum {
  sum: number
  count: number
}

/** worker → coordinator: the final report of a rank that finished training. */
export interface WorkerDone extends Envelope<typeof MessageType.WorkerDone> {
  rank: number
  steps: number
  /** Epochs trained (may be partial when the job stops at maxSteps). */
  epochs?: number
  /** Hash of the trained parameters; equal on every rank when the replicas stayed identical. */
  parameterHash: string
  finalLoss: number
  eval: Record<string, MetricSum>
  /**
   * Samples in the whole evaluation set (every rank's shard together), when the task has
   * one; absent otherwise. Every rank reports the same number, and the coordinator checks
   * that no rank counted more samples than its `evalShard` of this set holds.
   */
  evalExamples?: number
  backend: string
  /** Set when training ended early at a step boundary because a graceful stop was asked for. */
  stopReason?: string
  /** Rank 0: the checkpoint it committed last (the one to resume from), and its step. */
  checkpointDir?: string
  checkpointStep?: number
  /** Optimizer steps skipped for a non-finite gradient (`--on-nonfinite skip`). Absent from older workers. */
  skippedSteps?: number
  /** Peak resident memory of the worker process so far, in bytes (`process.resourceUsage().maxRSS`). Absent from older workers. */
  maxRssBytes?: number
}

/** worker → coordinator: the worker hit an error and stops. `rank` is absent before assignment. */
export interface WorkerFailed extends Envelope<typeof MessageType.WorkerFailed> {
  rank?: number
  error: WireError
}

/** coordinator → workers: the job failed; stop now. `reason` names the root cause. */
export interface Abort extends Envelope<typeof MessageType.Abort> {
  reason: string
  error?: WireError
}

/** coordinator → worker: the job is over (every rank is done); close and exit 0. */
export interface Shutdown extends Envelope<typeof MessageType.Shutdown> {
  reason: string
}

/**
 * coordinator → worker: proof of the coordinator's life, every `intervalMs`, to every waiting
 * and participating worker; a worker that hears nothing for intervalMs × maxMissed stops.
 * worker → coordinator: a worker waiting for its Assignment answers each one with its own,
 * so the coordinator can drop a waiting worker that is gone.
 */
export interface KeepAlive extends Envelope<typeof MessageType.KeepAlive> {
  /** The sender's heartbeatIntervalMs. */
  intervalMs: number
  /** The sender's heartbeatMaxMissed: silence for intervalMs × maxMissed means the sender is gone. */
  maxMissed: number
}

/**
 * worker's liveness thread → coordinator: the worker process is alive, every
 * heartbeatIntervalMs, from a second connection owned by a thread that never computes, so
 * a long synchronous step on the main thread does not silence it. The coordinator binds
 * the first connection that sends a participant's `token` (its JoinRequest's
 * livenessToken) to that participant and counts only that connection's Alive messages.
 */
export interface Alive extends Envelope<typeof MessageType.Alive> {
  token: string
  /** The step the main thread last published (informational; progress is timed by stepTimeoutMs). */
  step: number
  /*
   * Where the worker stands in its round's collective schedule, for the coordinator's stall
   * report (Note [Where a rank stands]); all absent before the first collective. In a call,
   * `step` is the call's.
   */
  /** The op id of the collective in flight; between collectives, the op id the next one gets. */
  op?: number
  /** The collective in flight (`allReduce`, `broadcast`, …); absent between collectives. */
  collective?: string
  /** `reduce-scatter, ring step 2 of 3, from rank 1`, `between collectives`, … */
  phase?: string
  /** The rank whose message the collective waits for. */
  waitingFor?: number
  /** How long (ms) the worker has been in this phase when it sent the message (not a timestamp: hosts' clocks differ). */
  inPhaseMs?: number
}

/**
 * coordinator → workers: stop gracefully (Ctrl-C, SIGTERM): the ranks agree on a step
 * boundary (through the gradient all-reduce), rank 0 writes a checkpoint, every rank reports
 * WorkerDone with `stopReason`, and the coordinator shuts the job down.
 */
export interface StopRequest extends Envelope<typeof MessageType.StopRequest> {
  reason: string
}

/**
 * coordinator → participants (elastic mode): end round `round` and join again. With
 * `atStepBoundary` 1 (a worker waits to join) the ranks agree on a step boundary first, as
 * for StopRequest, so no step is lost; with 0 (a rank was lost) they end it now, abandoning
 * the step in flight. Each then sends a JoinRequest from the same connection with the
 * endpoints of a fresh ring socket and gets the Assignment of the next round.
 */
export interface Regroup extends Envelope<typeof MessageType.Regroup> {
  round: number
  reason: string
  atStepBoundary: number
}

/** What rank 0 streams to the coordinator's --out: a checkpoint directory, or the final model. */
export type OutputTarget = 'checkpoint' | 'model'

/**
 * rank 0 → coordinator: `data` goes at `offset` of `file` of the checkpoint of `step` (or
 * of the final model), when the coordinator's --out is not on rank 0's machine. Parts are
 * at most OUTPUT_PART_BYTES; the coordinator writes them into a temporary directory.
 */
export interface OutputPart extends Envelope<typeof MessageType.OutputPart> {
  rank: number
  round: number
  target: OutputTarget
  step: number
  file: string
  offset: number
  data: Uint8Array
}

/**
 * rank 0 → coordinator: every part of `step`'s output was sent; `files[i]` must hold
 * `sizes[i]` bytes (decimal strings: sizes may pass 2^32). The coordinator fsyncs, renames
 * the directory into place, writes `manifest` (a checkpoint's) last, and answers OutputAck.
 */
export interface OutputCommit extends Envelope<typeof MessageType.OutputCommit> {
  rank: number
  round: number
  target: OutputTarget
  step: number
  files: string[]
  sizes: string[]
  manifest?: string
}

/** coordinator → rank 0: the output of `step` is committed at `path`, or failed with `error`. */
export interface OutputAck extends Envelope<typeof MessageType.OutputAck> {
  target: OutputTarget
  step: number
  path?: string
  error?: WireError
}

/**
 * rank 0 → coordinator: send me the checkpoint at `path` (a resumed job's `resumeFrom`, in
 * the coordinator's --out, which rank 0's machine does not see). The coordinator answers
 * with OutputParts and an OutputCommit that carries the manifest, or an OutputAck with the
 * error.
 */
export interface OutputRequest extends Envelope<typeof MessageType.OutputRequest> {
  rank: number
  round: number
  path: string
}

/** A data set split the coordinator serves (`--serve-data`). */
export type DataSplit = 'train' | 'eval'

/**
 * How one field (inputs or targets) of a served sample is stored, as plain data:
 * `shape` of one decoded sample, and `encoding` (`{ type: 'float32' }`,
 * `{ type: 'lookup', values }` or `{ type: 'oneHot', classes }`; the worker's data sets
 * define what each means).
 */
export interface WireFieldLayout {
  shape: number[]
  encoding: { type: string; values?: number[]; classes?: number }
}

/**
 * worker → coordinator (`--serve-data`): the stored rows of samples `indices` (uint32,
 * little-endian) of `split`, in that order; without `indices`, the split's description
 * (length and layout). Answered by a DataChunk with the same `requestId`.
 */
export interface DataRequest extends Envelope<typeof MessageType.DataRequest> {
  rank: number
  round: number
  split: DataSplit
  requestId: number
  indices?: Uint8Array
}

/**
 * coordinator → worker: the answer to DataRequest `requestId`: the split's `length` and
 * `inputs`/`targets` layouts (a description), or the rows asked for, each field's rows one
 * after another (`inputs`, `targets`); or `error` (an index out of range, a split the
 * task lacks).
 */
export interface DataChunk extends Envelope<typeof MessageType.DataChunk> {
  split: DataSplit
  requestId: number
  length?: number
  inputLayout?: WireFieldLayout
  targetLayout?: WireFieldLayout
  inputs?: Uint8Array
  targets?: Uint8Array
  error?: WireError
}

/** Most bytes of rows one DataRequest may ask for: a DataChunk stays under MAX_CONTROL_MESSAGE_BYTES. */
export const DATA_CHUNK_BYTES = 512 * 1024

/** The largest `data` of one OutputPart: a control message stays under MAX_CONTROL_MESSAGE_BYTES. */
export const OUTPUT_PART_BYTES = 512 * 1024

export type ControlMessage =
  | JoinRequest | Assignment | Reject | Heartbeat | BarrierRequest | BarrierRelease
  | StepMetrics | WorkerDone | WorkerFailed | Abort | Shutdown | KeepAlive | Alive | StopRequest | Regroup
  | OutputPart | OutputCommit | OutputAck | OutputRequest | DataRequest | DataChunk

/** The fields of a message without its envelope: what a sender fills in. */
export type MessageFields<M extends ControlMessage> = Omit<M, 'type' | 'version' | 'jobId'>

type ByType<T extends MessageType> = Extract<ControlMessage, { type: T }>

/** Builds a message with this process's PROTOCOL_VERSION: `controlMessage(MessageType.Heartbeat, jobId, { rank, round, step })`. */
export function controlMessage<T extends MessageType>(type: T, jobId: string, fields: MessageFields<ByType<T>>): ByType<T> {
  return { type, version: PROTOCOL_VERSION, jobId, ...fields } as unknown as ByType<T>
}
