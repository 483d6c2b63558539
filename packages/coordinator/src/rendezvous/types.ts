/**
 * The coordinator's rendezvous as data: its state, the events that move it and the actions
 * it asks the server to carry out. Names follow PyTorch's elastic rendezvous
 * (`participants`, `waitList`, `round`, `lastHeartbeatAt`, `keepAliveIntervalMs`).
 * Everything here is plain JSON-like data, so `decide` stays pure and testable.
 */
import type {
  Alive, BarrierRequest, ControlMessage, Heartbeat, JobConfig, JoinRequest, MessageType, StepMetrics, WireError, WorkerDone, WorkerFailed, OutputPart, OutputCommit, OutputRequest,
} from '@ringtrain/core'

type KeepAlive = Extract<ControlMessage, { type: typeof MessageType.KeepAlive }>

/** `regrouping`: elastic mode, between rounds (elastic.ts). */
export type Phase = 'waiting' | 'running' | 'regrouping' | 'finished' | 'failed'

/** One round of the job, for summary.json: who took part, from which step, and why it started. */
export interface RoundRecord {
  round: number
  worldSize: number
  /** `rank 0 (pid 1234 on host-a)`, by rank. */
  members: string[]
  /** The first step the round computed (from its first metrics); absent until then. */
  firstStep?: number
  why: string
}

/** A participant an elastic job went on without. */
export interface LostWorker {
  rank: number
  round: number
  pid: number
  host: string
  reason: string
  atMs: number
}

/** A worker that asked to join and waits for the world to fill. */
export interface WaitingWorker {
  /** ROUTER identity of the worker's DEALER (hex). */
  identity: string
  host: string
  pid: number
  localRank?: number
  /** The global rank its scheduler gave it (rank-hints.ts), and where that came from. */
  rankHint?: number
  hintSource?: string
  dataEndpoints: string[]
  backend?: string
  joinedAtMs: number
  /** Time of the last message of any kind from this worker (its join, then its KeepAlive answers). */
  lastHeartbeatAt: number
  /** Its JoinRequest's livenessToken: the secret its liveness thread's Alive messages carry. Never logged. */
  livenessToken?: string
  /**
   * ROUTER identity of its liveness thread's connection: the first connection that sent an
   * Alive with its livenessToken (while it waits or takes part). Alive messages from any
   * other connection are dropped.
   */
  livenessIdentity?: string
}

/** A worker with a rank in the current round. */
export interface Participant extends Omit<WaitingWorker, 'localRank'> {
  rank: number
  localRank: number
  /**
   * Time of the last message of any kind from this worker, or of an Alive from its liveness
   * thread; any message is a sign of life.
   */
  lastHeartbeatAt: number
  /** The optimizer step it is computing, from its last heartbeat or metrics (never from Alive: that is liveness, not progress). */
  step: number
  /** Set when the launcher saw the process exit. */
  exited?: { code: number | null; signal: string | null; atMs: number }
  /** Where it last said it stands in its collectives (its liveness thread's Alive); absent until the first. */
  position?: RankPosition
}

/** Where a participant stands in the round's collectives, as its last Alive said (stall.ts). */
export interface RankPosition {
  step: number
  /** The op id of its collective in flight; between collectives, the op id its next one gets. Absent before its first collective. */
  op?: number
  /** Absent between collectives. */
  collective?: string
  phase?: string
  waitingFor?: number
  /** When it entered this phase, on the coordinator's clock (the Alive's arrival minus its inPhaseMs). */
  sinceMs: number
}

/**
 * One stall report (stall.ts): where every rank stands when a collective has waited for
 * half the step timeout, a rank is declared lost, or a rank timed out in a collective.
 */
export interface StallReport {
  atMs: number
  trigger: 'stalled' | 'lost' | 'timeout'
  /** The furthest collective any rank has entered. */
  frontier?: { step: number; op: number; collective?: string }
  /** Ranks that have not entered the frontier's op (or whose position is unknown). */
  notArrived: number[]
  /** Ranks that some rank's collective waits for. */
  waitedOn: number[]
  /** Ranks not heard from for more than two heartbeat intervals. */
  silent: number[]
  /** Every rank not yet done, by rank. */
  ranks: Array<{ rank: number; step?: number; op?: number; collective?: string; phase?: string; waitingFor?: number; inPhaseMs?: number; lastHeardMsAgo: number }>
  /** The report as logged. */
  text: string
}

/** One failure reported or detected; the first one by time is the root cause. */
export interface Failure {
  atMs: number
  rank?: number
  reason: string
  error: WireError
}

/**
 * Messages the coordinator did not act on, by why (summary.json's `dropped`). The
 * coordinator acts only on messages from the connection that joined as a rank of the
 * current round, about that rank and round; everything else lands here.
 */
export interface DroppedCounts {
  /**
   * Heartbeat, BarrierRequest, StepMetrics, WorkerDone, WorkerFailed or KeepAlive from a
   * connection that is no participant of the current round (for WorkerFailed and KeepAlive:
   * nor waiting for a rank): an outsider, or a worker that was removed. Also an Alive whose
   * token belongs to no participant, or that comes from another connection than the one
   * already bound to its token.
   */
  notParticipant: number
  /**
   * From a participant, but naming another rank than its own, or another round than the
   * current one; or an Alive from a bound liveness connection carrying another token than its own.
   */
  wrongRankOrRound: number
  /**
   * Refused at the edge or on arrival: not msgpack, not a control message, a wrong field,
   * another protocol version or job id, or a type only the coordinator sends.
   */
  invalid: number
  /** JoinRequests that came after the world was full (the job runs or has ended). */
  lateJoin: number
}

export type DropReason = keyof DroppedCounts

/**
 * A gate that lets each key pass once per `intervalMs`, and at most a budget of keys per
 * interval over all keys, so a flood from one sender or from many costs a bounded number
 * of log lines or Rejects, and a bounded amount of memory (see drops.ts).
 */
export interface RateGate {
  /** Key → when it last passed, and how many were held back since. Insertion order is age. */
  keys: Record<string, { passedAtMs: number; heldBack: number }>
  /** Start of the current interval of the budget. */
  windowStartMs?: number
  /** Keys that passed in the current interval. */
  passedInWindow: number
  /** Held back because the interval's budget was spent (their keys are not tracked), by reason. */
  overBudget: Record<string, number>
  /** When the first of `overBudget` was held back. */
  overBudgetSinceMs?: number
}

/** How much the coordinator says about messages it drops (see drops.ts). */
export interface DropLimits {
  /** A line about one (sender, reason), or a Reject to one sender, at most once per this many ms. */
  intervalMs: number
  /** Lines about dropped messages per interval, over all senders. */
  linesPerInterval: number
  /** Rejects per interval, over all senders. */
  rejectsPerInterval: number
}

export interface RendezvousState {
  config: JobConfig
  phase: Phase
  round: number
  keepAliveIntervalMs: number
  keepAliveMaxMissed: number
  /** How long a non-zero exit seen by the launcher waits for the worker's own WorkerFailed. */
  exitGraceMs: number
  /**
   * The coordinator's hostname, when it listens beyond loopback (a multi-host job): a worker
   * on another host that advertises a loopback data address is refused at its join.
   */
  coordinatorHost?: string
  /** When the coordinator first saw itself waiting for workers (the join deadline counts from here). */
  waitingSinceMs?: number
  /** When the last KeepAlive went to every waiting and participating worker. */
  lastKeepAliveSentAtMs?: number
  waitList: WaitingWorker[]
  /** Keyed by worker identity. */
  participants: Record<string, Participant>
  /** Barrier name → ranks that arrived. */
  barrierArrivals: Record<string, number[]>
  /** Step → rank → that rank's metrics, until every rank has reported the step. */
  stepReports: Record<string, Record<string, StepMetrics>>
  totals: { samples: number; stepTimeMs: number; stepsWritten: number }
  /** Rank → final report. */
  doneReports: Record<string, WorkerDone>
  failures: Failure[]
  /** Messages not acted on, by why; summary.json reports them. */
  dropped: DroppedCounts
  dropLimits: DropLimits
  /** Gates the log lines about dropped messages, keyed by reason and sender. */
  dropLog: RateGate
  /** Gates the Rejects, keyed by sender. */
  rejects: RateGate
  /** Why a graceful stop was asked for, once it was (the job then ends at a step boundary). */
  stopRequested?: string
  /** Every round so far (summary.json's `rounds`). */
  rounds: RoundRecord[]
  /** Elastic mode: participants the job went on without. */
  lost: LostWorker[]
  /** Elastic mode, while regrouping: the rank each returning worker had in the last round. */
  previousRanks: Record<string, number>
  /** Elastic mode: when the current regrouping began. */
  regroupingSinceMs?: number
  /** Elastic mode: a Regroup at the next step boundary was sent this round. */
  boundaryRegroupAsked?: boolean
  /** Elastic mode: why the next round starts. */
  nextRoundWhy?: string
  /** Elastic mode: the job fell below minWorkers; its last round only checkpoints, then the job fails with this. */
  belowMinimum?: Failure
  /** The last stall report's time and the positions it described (stall.ts). */
  stall: { lastReportAtMs?: number; lastSignature?: string }
  /** The latest stall reports, oldest first (at most MAX_STALL_REPORTS). */
  stallReports: StallReport[]
}

export type RendezvousEvent =
  | { kind: 'join'; from: string; message: JoinRequest }
  | { kind: 'heartbeat'; from: string; message: Heartbeat }
  | { kind: 'barrier'; from: string; message: BarrierRequest }
  | { kind: 'metrics'; from: string; message: StepMetrics }
  | { kind: 'done'; from: string; message: WorkerDone }
  | { kind: 'failed'; from: string; message: WorkerFailed }
  /** A waiting worker's answer to the coordinator's KeepAlive. */
  | { kind: 'keepAlive'; from: string; message: KeepAlive }
  /** A participant's liveness thread says its process is alive. */
  | { kind: 'alive'; from: string; message: Alive }
  /** Rank 0 streams a checkpoint or the final model to the coordinator's --out. */
  | { kind: 'outputPart'; from: string; message: OutputPart }
  | { kind: 'outputCommit'; from: string; message: OutputCommit }
  | { kind: 'outputRequest'; from: string; message: OutputRequest }
  /** A message that failed validation at the edge (or a type the coordinator never receives). */
  | { kind: 'invalidMessage'; from: string; error: WireError }
  | { kind: 'tick' }
  /** The launcher saw a local worker process end. */
  | { kind: 'workerExited'; pid: number; code: number | null; signal: string | null }
  | { kind: 'shutdownRequested'; reason: string; exitCode?: number }
  /** Stop gracefully: the ranks finish the step in flight, rank 0 checkpoints, the job ends. */
  | { kind: 'stopRequested'; reason: string }
  /** A write to the job's output folder failed (an `OutputWriteError`): the job stops. */
  | { kind: 'outputFailed'; error: WireError }

/** One line of metrics.jsonl: one step aggregated over every rank. */
export interface MetricsLine {
  step: number
  epoch: number
  /** Mean over ranks. */
  loss: number
  /** The learning rate the step used (the same on every rank). */
  learningRate: number
  /** Total samples of the step over the slowest rank's step time (compute + all-reduce). */
  samplesPerSecond: number
  /** Max over ranks. */
  computeMs: number
  /** Max over ranks. */
  allReduceMs: number
  /** Sum over ranks. */
  bytesSent: number
  /** Optimizer steps skipped so far for a non-finite gradient (`--on-nonfinite skip`); absent when no rank reported it. */
  skippedSteps?: number
}

export interface JobSummary {
  jobId: string
  workers: number
  steps: number
  epochs: number
  /** All samples over the sum of the steps' slowest times. */
  samplesPerSecond: number
  /** Mean of the ranks' final losses. */
  finalLoss: number
  /** Metric → Σsum / Σcount over ranks. */
  eval: Record<string, number>
  replicasIdentical: boolean
  /** Optimizer steps every rank skipped because a gradient held NaN or Inf (`--on-nonfinite skip`). */
  skippedSteps: number
  /** By rank. */
  parameterHashes: string[]
  /** By rank. */
  backends: string[]
  /** Peak resident memory of each rank's process (bytes, by rank), when every rank reported it. */
  maxRssBytes?: number[]
  /**
   * Messages the coordinator did not act on, by why (see `DroppedCounts`): non-zero counts
   * mean something other than this job's workers reached the coordinator's port, or a
   * worker sent what it should not have.
   */
  dropped: DroppedCounts
  /** Set when the job was stopped gracefully before its last step: why. */
  stopped?: string
  /** The checkpoint rank 0 committed last: where to resume from (`ringtrain launch --resume OUT`). */
  checkpoint?: { step: number; dir: string }
  /** The job's latest stall reports (stall.ts), when it had any. */
  stallReports?: StallReport[]
  /** Every round: members, first step, why it started (one round unless the job is elastic). */
  rounds: RoundRecord[]
  /** Elastic mode: the workers the job went on without. */
  lost?: Array<Omit<LostWorker, 'atMs'>>
}

/** What a progress bar shows after each step. `totalSteps` is 0 until a worker reports it. */
export interface ProgressSample {
  /** Optimizer steps finished (the last metrics line's step + 1). */
  stepsDone: number
  totalSteps: number
  epoch: number
  epochs: number
  loss: number
  samplesPerSecond: number
}

/** Events for a launcher's progress bar and logs. */
export type CoordinatorEvent =
  | { type: 'joined'; host: string; pid: number; joined: number; worldSize: number }
  | { type: 'started'; round: number; worldSize: number; hosts: string[] }
  | { type: 'metrics'; line: MetricsLine; progress: ProgressSample }
  | { type: 'workerDone'; rank: number; done: number; worldSize: number }
  | { type: 'done'; summary: JobSummary }
  | { type: 'failed'; reason: string; exitCode: number }

export type RendezvousAction =
  | { kind: 'send'; to: string; message: ControlMessage }
  | { kind: 'broadcast'; to: string[]; message: ControlMessage }
  | { kind: 'writeMetricsLine'; line: MetricsLine }
  | { kind: 'log'; line: string }
  /** The job's latest stall reports, to write to stall-reports.json. */
  | { kind: 'writeStallReports'; reports: StallReport[] }
  /** Write a part of what rank 0 streams; commit it and answer OutputAck to `from`. */
  | { kind: 'writeOutputPart'; message: OutputPart }
  | { kind: 'commitOutput'; from: string; message: OutputCommit }
  /** Send the checkpoint at `path` (the job's resumeFrom) to rank 0. */
  | { kind: 'sendCheckpoint'; to: string; path: string; round: number }
  | { kind: 'progress'; event: CoordinatorEvent }
  | { kind: 'finish'; summary: JobSummary }
  /** `summary` is set when every rank finished but the job failed anyway (the replicas differ). */
  | { kind: 'fail'; reason: string; exitCode: number; error: WireError; failures: Failure[]; summary?: JobSummary }

export interface Decision {
  state: RendezvousState
  actions: RendezvousAction[]
}
