/**
 * The coordinator's I/O: the ROUTER socket, the tick timer, metrics.jsonl and summary.json.
 * It decides nothing itself: every received message, tick, exit notice, stop request or
 * failed write of metrics.jsonl becomes an event for `decide`, and the actions that come
 * back are carried out here. A failed write of metrics.jsonl or summary.json fails the job
 * with an `OutputWriteError` (docs/design.md, "Output files and write errors").
 */
import { ConfigError, MessageType, OUT_TOKEN_FILE, controlMessage, openControlServer, errorFromWire, type DataRequest, type DistError, type JobConfig, type JobSecurity } from '@ringtrain/core'
import { hostname } from 'node:os'
import { OutputSink, sendCheckpoint, writeOutToken } from './output-sink.js'
import { eventFromReceipt } from './rendezvous/events.js'
import { decide, initialState } from './rendezvous/decide.js'
import type { CoordinatorEvent, Failure, JobSummary, RendezvousAction, RendezvousEvent } from './rendezvous/types.js'
import { JobFiles } from './job-files.js'
import { TensorBoardWriter } from './tensorboard/event-file.js'
import { scalarsOf } from './tensorboard/scalars.js'
import { answerDataRequest, dataChunk, type DataSource } from './data-server.js'

export interface CoordinatorOptions {
  /** ROUTER endpoint; tcp://127.0.0.1:0 (the default) picks a free port on loopback. */
  bind?: string
  /**
   * The job's key: only workers holding it complete a handshake (Note [Job security] in
   * @ringtrain/core). INSECURE lets anyone who reaches `bind` join, read or stop the job.
   */
  security: JobSecurity
  /** Progress for a launcher: joins, each step's metrics, done, failed. */
  onEvent?: (event: CoordinatorEvent) => void
  /** Where `[coordinator] …` lines go; stderr by default. */
  log?: (line: string) => void
  /** How often heartbeats are checked; a quarter of heartbeatIntervalMs by default. */
  tickIntervalMs?: number
  /** How long a worker's non-zero exit waits for its own WorkerFailed before failing the job. */
  exitGraceMs?: number
  /** Also write the scalars as a TensorBoard event file in this folder (tensorboard/event-file.ts). */
  tensorboardDir?: string
  /** `--serve-data`: the task's data, which participants fetch with DataRequest (data-server.ts). */
  dataSource?: DataSource
}

export interface CoordinatorResult {
  ok: boolean
  /** 0 when every rank finished; non-zero when the job failed or was stopped. */
  exitCode: number
  /**
   * Set when every rank reported done: on success, and on a job that failed only at the end
   * because the replicas differ. It is what summary.json holds.
   */
  summary?: JobSummary
  /** The root cause: the first failure by time. */
  error?: DistError
  /** Every failure, root cause first. */
  failures?: Failure[]
}

export interface Coordinator {
  readonly endpoint: string
  /** Settles once the job finished or failed, after the last Shutdown/Abort is flushed and the socket closed. */
  readonly done: Promise<CoordinatorResult>
  /** The launcher saw a local worker process end. */
  notifyWorkerExited(pid: number, code: number | null, signal: string | null): void
  /** Stops the job at once: workers get an Abort; `done` settles with `exitCode` (1 by default). */
  stop(reason: string, exitCode?: number): Promise<CoordinatorResult>
  /**
   * Stops the job gracefully (a first Ctrl-C): the ranks finish the step in flight, rank 0
   * writes a checkpoint, and `done` settles with the summary (`stopped` set). Before
   * training started it is `stop`.
   */
  requestStop(reason: string): Promise<CoordinatorResult>
}

export async function startCoordinator(config: JobConfig, options: CoordinatorOptions): Promise<Coordinator> {
  const log = (line: string) => (options.log ?? ((text: string) => process.stderr.write(`${text}\n`)))(`[coordinator] ${line}`)
  const bind = options.bind ?? 'tcp://127.0.0.1:0'
  // Listening beyond loopback: workers may be on other machines, and must not advertise loopback.
  const multiHost = !/^tcp:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\]):/.test(bind)
  let state = initialState(config, { exitGraceMs: options.exitGraceMs, ...(multiHost ? { coordinatorHost: hostname() } : {}) })
  let settled = false
  let resolveDone!: (result: CoordinatorResult) => void
  const done = new Promise<CoordinatorResult>((resolve) => { resolveDone = resolve })

  // Bind before touching --out: a coordinator that cannot listen must leave an earlier run's files alone.
  // Messages that arrive before metrics.jsonl is open wait in `early`.
  const early: RendezvousEvent[] = []
  let files: JobFiles | undefined
  const server = await openControlServer(bind, {
    jobId: config.jobId,
    security: options.security,
    log,
    onReceive: (receipt) => {
      // Data requests are answered here, off the rendezvous: they change no state.
      if (receipt.kind === 'message' && receipt.message.type === MessageType.DataRequest) return serveData(receipt.from, receipt.message)
      if (files === undefined) early.push(eventFromReceipt(receipt))
      else apply(eventFromReceipt(receipt))
    },
  }).catch((error: unknown) => { throw bindError(bind, error) })
  try {
    // A failed line stops the job: its workers hear an Abort naming the path and the error.
    files = await JobFiles.open(config.outDir, { onError: (error) => apply({ kind: 'outputFailed', error: error.toWire() }) })
  } catch (error) {
    await server.close({ lingerMs: 0 })
    throw error
  }
  const jobFiles = files
  const tensorboard = options.tensorboardDir === undefined ? undefined : TensorBoardWriter.open(options.tensorboardDir, (error) => log(error.message))
  if (tensorboard !== undefined) log(`TensorBoard scalars go to ${tensorboard.path} (tensorboard --logdir ${options.tensorboardDir}).`)
  // Rank 0 writes its outputs itself only where it finds this token (the same folder);
  // otherwise it streams them here.
  let outToken: string | undefined
  try {
    outToken = await writeOutToken(config.outDir)
  } catch (error) {
    log(`Could not write ${config.outDir}/${OUT_TOKEN_FILE} (${(error as Error).message}); rank 0 will stream checkpoints and the model here.`)
  }
  state = { ...state, config: { ...state.config, ...(outToken !== undefined ? { outToken } : {}) } }
  const sink = new OutputSink(config.outDir, config.keepCheckpoints, log)
  const tickIntervalMs = options.tickIntervalMs ?? Math.min(500, Math.max(10, config.heartbeatIntervalMs / 4))
  const timer = setInterval(() => apply({ kind: 'tick' }), tickIntervalMs)
  log(`Job ${JSON.stringify(config.jobId)} waits for ${config.worldSize} worker(s) on ${server.endpoint}; metrics go to ${jobFiles.metricsPath}.`)
  for (const event of early.splice(0)) apply(event)

  /** Answers a participant's DataRequest; one from any other connection is logged and dropped. */
  function serveData(from: string, request: DataRequest): void {
    const participant = state.participants[from]
    if (participant === undefined) return log(`Dropped a DataRequest from ${from.slice(0, 8)}, which is not a worker of this job's round.`)
    void server.send(from, dataChunk(config.jobId, answerDataRequest(options.dataSource, request, participant.rank))).catch((error: unknown) => log(`Could not send samples to rank ${participant.rank}: ${(error as Error).message}`))
  }

  function apply(event: RendezvousEvent): void {
    if (settled) return
    const decision = decide(state, event, Date.now())
    state = decision.state
    for (const action of decision.actions) carryOut(action)
  }

  function carryOut(action: RendezvousAction): void {
    switch (action.kind) {
      case 'send': void server.send(action.to, action.message); break
      case 'broadcast': for (const to of action.to) void server.send(to, action.message); break
      case 'writeMetricsLine':
        jobFiles.writeMetricsLine(action.line)
        tensorboard?.scalars(action.line.step, scalarsOf(action.line))
        break
      case 'log': log(action.line); break
      case 'writeOutputPart': sink.part(action.message); break
      case 'commitOutput': {
        const { from, message } = action
        void sink.commit(message).then((answer) => server.send(from, controlMessage(MessageType.OutputAck, config.jobId, { target: message.target, step: message.step, ...answer }))).catch((error: unknown) => log(`Could not answer rank 0 about its output: ${(error as Error).message}`))
        break
      }
      case 'sendCheckpoint': void sendCheckpoint(config.jobId, action.path, action.round, (message) => server.send(action.to, message)).catch((error: unknown) => log(`Could not send checkpoint ${action.path} to rank 0: ${(error as Error).message}`)); break
      case 'writeStallReports': void jobFiles.writeStallReports(action.reports).catch((error: unknown) => log(`Could not write ${jobFiles.stallReportsPath}: ${(error as Error).message}`)); break
      case 'progress': emit(action.event); break
      case 'finish': void settle({ ok: true, exitCode: 0, summary: action.summary }); break
      case 'fail': void settle({ ok: false, exitCode: action.exitCode, error: errorFromWire(action.error), failures: action.failures, ...(action.summary !== undefined ? { summary: action.summary } : {}) }); break
    }
  }

  function emit(event: CoordinatorEvent): void {
    try {
      options.onEvent?.(event)
    } catch (error) {
      log(`The progress listener failed on a ${event.type} event and was skipped: ${(error as Error).message}`)
    }
  }

  async function settle(result: CoordinatorResult): Promise<void> {
    if (settled) return
    settled = true
    clearInterval(timer)
    // metrics.jsonl is complete and on disk before summary.json, which commits the run, is written.
    try {
      await sink.close()
      await jobFiles.closeMetrics()
    } catch (error) {
      result = withOutputFailure(result, error as DistError)
    }
    if (result.summary !== undefined) tensorboard?.scalars(result.summary.steps, Object.fromEntries(Object.entries(result.summary.eval).map(([name, value]) => [`eval/${name}`, value])))
    await tensorboard?.close()
    let summaryWritten = false
    try {
      if (result.summary !== undefined) {
        await jobFiles.writeSummary(result.summary)
        summaryWritten = true
      }
    } catch (error) {
      result = withOutputFailure(result, error as DistError)
    }
    await server.close({ lingerMs: 1000 })
    const summaryIn = summaryWritten ? `; the summary is in ${jobFiles.summaryPath}` : ''
    log(result.ok ? `Job ${JSON.stringify(config.jobId)} finished${summaryIn}.` : `Job ${JSON.stringify(config.jobId)} failed with exit code ${result.exitCode}${summaryIn}.`)
    resolveDone(result)
  }

  /**
   * Folds a write error found while settling (the last metrics lines, summary.json) into the
   * result: a job that finished fails with it as its cause (exit code 1); a job that failed
   * already keeps its root cause and lists this one under it. The workers have already been
   * told to stop, so only the exit code and the message change.
   */
  function withOutputFailure(result: CoordinatorResult, error: DistError): CoordinatorResult {
    const failures = result.failures ?? []
    const wire = error.toWire()
    if (failures.some((f) => f.error.code === wire.code && f.error.message === wire.message)) return result
    log(error.message)
    const failure = { atMs: Date.now(), reason: error.message, error: wire }
    if (!result.ok) return { ...result, failures: [...failures, failure] }
    emit({ type: 'failed', reason: error.message, exitCode: 1 })
    return { ...result, ok: false, exitCode: 1, error, failures: [failure] }
  }

  return {
    endpoint: server.endpoint,
    done,
    notifyWorkerExited: (pid, code, signal) => apply({ kind: 'workerExited', pid, code, signal }),
    stop: (reason, exitCode) => {
      apply({ kind: 'shutdownRequested', reason, exitCode })
      return done
    },
    requestStop: (reason) => {
      apply({ kind: 'stopRequested', reason })
      return done
    },
  }
}

/** The ConfigError for an endpoint the ROUTER could not bind: in use, not an address of this machine, or malformed. */
function bindError(bind: string, error: unknown): ConfigError {
  const code = (error as { code?: string }).code
  const message = code === 'EADDRINUSE'
    ? `--bind ${bind} is in use; pick another port, or port 0 for any free one.`
    : code === 'EADDRNOTAVAIL'
      ? `--bind ${bind} is not an address of this machine; bind to one of its addresses, or tcp://0.0.0.0:PORT for all of them.`
      : `--bind ${bind} could not be bound: ${(error as Error).message}. Use tcp://HOST:PORT with an address of this machine.`
  return new ConfigError(message, { expected: 'a free local endpoint', got: bind }, { cause: error })
}
