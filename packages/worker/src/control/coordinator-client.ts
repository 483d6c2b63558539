/**
 * A worker's side of the control plane: joins the coordinator, then heartbeats, waits at
 * barriers, reports metrics and its final result, and hears Abort and Shutdown.
 *
 *   const client = await CoordinatorClient.join(endpoint, { jobId, host, pid, dataEndpoints, backend }, { timeoutMs: 330_000 })
 *   client.startHeartbeats(() => step)
 *   await client.barrier('layout-checked', 30_000)
 *
 * Liveness does not depend on the main thread: `join` starts a liveness thread (liveness.ts)
 * with a connection of its own, which sends Alive (every heartbeatIntervalMs once the job's
 * rate is known) with the token of this worker's JoinRequest, so a synchronous step of
 * any length never gets a healthy worker declared lost. Heartbeats from the main thread
 * still carry its step (progress); a main thread stuck in a step is for the collectives'
 * step timeout to catch. Publish the step with `setStep` for the Alive messages.
 *
 * The coordinator sends a KeepAlive every heartbeatIntervalMs (to the liveness thread too). When nothing at all comes from
 * it for heartbeatIntervalMs × heartbeatMaxMissed, the client aborts on its own (onAbort
 * listeners fire, waits end), so a worker never hangs on a coordinator that is gone.
 */
import {
  CollectiveAbortedError, CollectiveTimeoutError, DistError, MessageType, OUTPUT_PART_BYTES, PeerLostError, connectControlClient, controlMessage, errorFromWire, type JobSecurity, type OutputTarget,
  messageTypeName, type Assignment, type ControlClient, type ControlMessage, type ControlReceipt, type JoinRequest, type MessageFields,
  type StepMetrics, type WireError, type WorkerDone, type CollectivePosition, type DataChunk, type DataRequest,
} from '@ringtrain/core'
import { randomBytes } from 'node:crypto'
import { LivenessThread } from './liveness.js'
import { Mailbox } from './mailbox.js'

export type JoinFields = MessageFields<JoinRequest> & { jobId: string }
export type StepReport = Omit<MessageFields<StepMetrics>, 'rank' | 'round'>
export type DoneReport = Omit<MessageFields<WorkerDone>, 'rank'>

export interface JoinOptions {
  /** How long to wait for the Assignment (the world fills only when every worker joined). */
  timeoutMs: number
  /** Where whole-sentence log lines go; stderr by default. */
  log?: (line: string) => void
  /** How long one control send may wait for room in the socket's queue; see DEFAULT_CONTROL_SEND_TIMEOUT_MS. */
  sendTimeoutMs?: number
  /** The job's key, or INSECURE (Note [Job security] in @ringtrain/core). */
  security: JobSecurity
}

/** How long a join waits for the liveness thread to load (about 0.5 s on an idle machine) before it goes on without. */
const LIVENESS_BOOT_MS = 15_000

function withinMs(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([promise, new Promise<void>((resolve) => { timer = setTimeout(resolve, ms) })]).finally(() => clearTimeout(timer))
}

export class CoordinatorClient {
  private heartbeatTimer: NodeJS.Timeout | undefined
  private getStep: () => number = () => 0

  private constructor(
    readonly endpoint: string,
    /** The current round's Assignment (a new one after each `rejoin`). */
    public assignment: Assignment,
    /** What this worker joined with (a rejoin sends it again with new ring endpoints). */
    private readonly joinFields: JoinFields & { livenessToken: string },
    private readonly socket: ControlClient,
    private readonly mailbox: Mailbox,
    private readonly watch: SilenceWatch,
    private readonly liveness: LivenessThread,
  ) {
    mailbox.prefix = () => `[rank ${this.rank}/${this.worldSize} round ${this.round} step ${this.getStep()}]`
    // A participant heartbeats on its own timer; it no longer answers keep-alives.
    mailbox.onKeepAlive = () => {}
    watch.who = `rank ${assignment.rank}`
    // The coordinator's KeepAlive reaches the liveness thread even while this thread computes.
    watch.alsoHeardAt = () => this.liveness.lastHeardAt
    liveness.setInterval(assignment.config.heartbeatIntervalMs)
    watch.arm(assignment.config.heartbeatIntervalMs, assignment.config.heartbeatMaxMissed)
  }

  get rank(): number { return this.assignment.rank }
  get worldSize(): number { return this.assignment.worldSize }
  get round(): number { return this.assignment.round }
  get jobId(): string { return this.assignment.jobId }

  /** Sends a JoinRequest and resolves once the coordinator assigned a rank; rejects with the typed error of a Reject, an Abort, or a timeout. */
  static async join(endpoint: string, fields: JoinFields, options: JoinOptions): Promise<CoordinatorClient> {
    const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
    const who = `pid ${fields.pid} on ${fields.host}`
    const mailbox = new Mailbox(log, () => `[worker pid ${fields.pid} joining]`)
    const socket = await connectControlClient(endpoint, () => mailbox.prefix(), {
      jobId: fields.jobId,
      security: options.security,
      log: (line) => log(`${mailbox.prefix()} ${line}`),
      onReceive: (receipt: ControlReceipt) => mailbox.receive(receipt),
      sendTimeoutMs: options.sendTimeoutMs,
      // A worker whose key the coordinator refuses can never join: say so now, not at the join timeout.
      onRefused: (reason) => mailbox.abortLocally(fields.jobId, `${reason}.`, { name: 'ConfigError', code: 'E_CONFIG', message: `${who} cannot join: ${reason}. Give the coordinator and every worker the same --secret-file (or all --insecure).`, context: { expected: "the coordinator's job key", got: 'another key, or none' } }),
    })
    const { jobId, ...joinFields } = fields
    // The secret that binds the liveness thread's connection to this one (never logged).
    const livenessToken = randomBytes(16).toString('hex')
    // Until the Assignment, the join timeout bounds the wait; once a KeepAlive told the
    // coordinator's rate, its silence for intervalMs × maxMissed ends the wait sooner.
    const watch = new SilenceWatch(mailbox, endpoint, jobId, who)
    // Up before the join, so that no synchronous stretch after the Assignment (backend, task,
    // model) comes before it runs. Paused until the coordinator knows the token (its first
    // KeepAlive or the Assignment), so that no Alive arrives before the JoinRequest.
    const liveness = LivenessThread.start({
      endpoint, jobId, token: livenessToken, intervalMs: 0, security: options.security, who,
      log: (line) => log(`${mailbox.prefix()} ${line}`),
    })
    await withinMs(liveness.ready, LIVENESS_BOOT_MS)
    watch.alsoHeardAt = () => liveness.lastHeardAt
    mailbox.onKeepAlive = (keepAlive) => {
      // The answer tells the coordinator this waiting worker is still there.
      socket.send(controlMessage(MessageType.KeepAlive, jobId, { intervalMs: keepAlive.intervalMs, maxMissed: keepAlive.maxMissed }), { droppable: true }).catch(() => undefined)
      liveness.setInterval(keepAlive.intervalMs)
      watch.arm(keepAlive.intervalMs, keepAlive.maxMissed)
    }
    try {
      await socket.send(controlMessage(MessageType.JoinRequest, jobId, { ...joinFields, livenessToken }))
      const timeoutError = () => new CollectiveTimeoutError('E_TIMEOUT', `${who} waited ${options.timeoutMs} ms for the coordinator at ${endpoint} to assign it a rank in job ${JSON.stringify(jobId)}. Check that the coordinator runs there and that all of its workers were started.`, { expected: 'an Assignment', got: 'no answer', timeoutMs: options.timeoutMs })
      const answer = await mailbox.next([MessageType.Assignment, MessageType.Reject, MessageType.Abort, MessageType.Shutdown], options.timeoutMs, timeoutError)
      if (answer.type === MessageType.Assignment) {
        const client = new CoordinatorClient(endpoint, answer, { ...fields, livenessToken }, socket, mailbox, watch, liveness)
        log(`${mailbox.prefix()} joined round ${answer.round} of job ${JSON.stringify(jobId)} as rank ${answer.rank} in a world of ${answer.worldSize} (coordinator ${endpoint}).`)
        return client
      }
      if (answer.type === MessageType.Reject) throw errorFromWire(answer.error)
      if (answer.type === MessageType.Abort) throw errorFromWire(answer.error ?? closedError(answer.reason))
      throw errorFromWire(closedError(answer.type === MessageType.Shutdown ? answer.reason : `unexpected ${answer.type}`))
    } catch (error) {
      watch.stop()
      await liveness.close()
      await socket.close({ lingerMs: 0 })
      // A refused handshake also makes the JoinRequest's send time out: the refusal says why.
      const refusal = mailbox.ending(MessageType.Abort)
      if (refusal?.error !== undefined && !(error instanceof DistError && error.code === 'E_CONFIG')) throw errorFromWire(refusal.error)
      throw error
    }
  }

  /**
   * Sends a Heartbeat now and every heartbeatIntervalMs of the job config, with the step
   * `getStep` returns; the liveness thread (started at the join) sends Alive at the same rate
   * whatever this thread does.
   */
  startHeartbeats(getStep: () => number): void {
    this.getStep = getStep
    this.stopHeartbeats()
    this.liveness.setStep(getStep())
    // Dropped while the queue is backed up; a failed one is left to the silence watch to report.
    const beat = () => void this.send(MessageType.Heartbeat, { rank: this.rank, round: this.round, step: getStep() }, { droppable: true }).catch(() => undefined)
    beat()
    this.heartbeatTimer = setInterval(beat, this.assignment.config.heartbeatIntervalMs)
    this.heartbeatTimer.unref()
  }

  stopHeartbeats(): void {
    clearInterval(this.heartbeatTimer)
    this.heartbeatTimer = undefined
  }

  /** Publishes the step this worker computes to the liveness thread (for its Alive messages). */
  setStep(step: number): void {
    this.liveness.setStep(step)
  }

  /** Publishes where this worker stands in its collectives to the liveness thread; pass it as a ProcessGroup's `onPosition`. */
  setPosition(position: CollectivePosition): void {
    this.liveness.setPosition(position)
  }

  /** Resolves when every rank reached barrier `name`; rejects on timeout (naming the barrier) or on Abort. */
  async barrier(name: string, timeoutMs: number): Promise<void> {
    const released = this.mailbox.waitForRelease(name, timeoutMs, () => new CollectiveTimeoutError('E_TIMEOUT', `rank ${this.rank} waited ${timeoutMs} ms at barrier ${JSON.stringify(name)} (round ${this.round}) for the other ranks; see the coordinator log for which rank is missing.`, { rank: this.rank, round: this.round, phase: name }))
    // Promise.all: a failed send rejects at once, and the release's own rejection stays handled.
    await Promise.all([this.send(MessageType.BarrierRequest, { rank: this.rank, round: this.round, name }), released])
  }

  /** Sends one step's metrics; never rejects (dropped while the queue is backed up, a failure is logged). */
  sendMetrics(metrics: StepReport): Promise<void> {
    return this.send(MessageType.StepMetrics, { ...metrics, rank: this.rank, round: this.round }, { droppable: true }).catch((error: Error) => {
      this.mailbox.log(`${this.mailbox.prefix()} dropped the metrics of step ${metrics.step}: ${error.message}`)
    })
  }

  /**
   * Sends this rank's final report; the coordinator answers with Shutdown once every rank is done.
   * Settles within heartbeatIntervalMs × heartbeatMaxMissed: rejects when the coordinator went
   * silent or the message could not be handed over by then.
   */
  done(report: DoneReport): Promise<void> {
    return this.sendWithin(MessageType.WorkerDone, { ...report, rank: this.rank })
  }

  /** Reports this worker's error to the coordinator, which stops the job with it as the root cause. Settles like `done`. */
  failed(error: unknown): Promise<void> {
    return this.sendWithin(MessageType.WorkerFailed, { rank: this.rank, error: toWire(error) })
  }

  /** Calls `callback` when the coordinator aborts the job (at once if it already did). Returns an unsubscribe function. */
  onAbort(callback: (reason: string, error: DistError) => void): () => void {
    return this.mailbox.on(MessageType.Abort, (m) => callback(m.reason, errorFromWire(m.error ?? closedError(m.reason))))
  }

  /**
   * Elastic mode: joins again after this worker's round ended (Regroup, or a collective that
   * broke), from the same connection, with the endpoints of a fresh ring socket; resolves with
   * the next round's Assignment (also kept as `assignment`). Rejects on Abort, Shutdown or
   * after `timeoutMs`.
   */
  async rejoin(dataEndpoints: string[], timeoutMs: number): Promise<Assignment> {
    const { jobId, ...fields } = this.joinFields
    const who = `rank ${this.rank} of round ${this.round}`
    const timeoutError = () => new CollectiveTimeoutError('E_TIMEOUT', `${who} waited ${timeoutMs} ms for the coordinator at ${this.endpoint} to start the next round.`, { rank: this.rank, round: this.round, expected: 'an Assignment', got: 'no answer', timeoutMs })
    const answer = this.mailbox.next([MessageType.Assignment, MessageType.Reject, MessageType.Abort, MessageType.Shutdown], timeoutMs, timeoutError)
    answer.catch(() => undefined) // awaited below; handled if the send fails first
    await this.socket.send(controlMessage(MessageType.JoinRequest, jobId, { ...fields, dataEndpoints }))
    const message = await answer
    if (message.type === MessageType.Reject) throw errorFromWire(message.error)
    if (message.type === MessageType.Abort) throw errorFromWire(message.error ?? closedError(message.reason))
    if (message.type !== MessageType.Assignment) throw errorFromWire(closedError(message.type === MessageType.Shutdown ? message.reason : 'unexpected answer'))
    this.assignment = message
    this.watch.who = `rank ${message.rank}`
    this.mailbox.log(`${this.mailbox.prefix()} joined round ${message.round} as rank ${message.rank} in a world of ${message.worldSize}.`)
    return message
  }

  /** Elastic mode: calls `callback` when the coordinator ends this worker's round (Regroup). */
  onRegroup(callback: (regroup: { round: number; reason: string; atStepBoundary: boolean }) => void): void {
    this.mailbox.onRegroup = (message) => {
      if (message.round !== this.round) return
      this.mailbox.log(`${this.mailbox.prefix()} the coordinator ends round ${message.round}${message.atStepBoundary ? ' at the next step boundary' : ''}: ${message.reason}.`)
      callback({ round: message.round, reason: message.reason, atStepBoundary: message.atStepBoundary === 1 })
    }
  }

  /** `--serve-data`: asks the coordinator for samples; the answer comes to the `onDataChunk` callback. */
  requestData(fields: Omit<MessageFields<DataRequest>, 'rank' | 'round'>, onDataChunk: (message: DataChunk) => void): Promise<void> {
    this.mailbox.onDataChunk = onDataChunk
    return this.send(MessageType.DataRequest, { ...fields, rank: this.rank, round: this.round })
  }

  /**
   * Streams `files` of a checkpoint (with its manifest) or of the final model to the
   * coordinator's --out, in OutputParts of at most OUTPUT_PART_BYTES, then commits them and
   * waits for the coordinator's OutputAck; resolves with the path it committed. Rejects with
   * the coordinator's `OutputWriteError`, an Abort, or a timeout of `timeoutMs`.
   */
  async streamOutput(target: OutputTarget, step: number, files: [string, Uint8Array][], timeoutMs: number, manifest?: string): Promise<string> {
    const at = { rank: this.rank, round: this.round, target, step }
    for (const [file, bytes] of files) {
      for (let offset = 0; offset < bytes.byteLength; offset += OUTPUT_PART_BYTES) {
        await this.send(MessageType.OutputPart, { ...at, file, offset, data: bytes.subarray(offset, Math.min(bytes.byteLength, offset + OUTPUT_PART_BYTES)) })
      }
    }
    const what = target === 'checkpoint' ? `the checkpoint of step ${step}` : 'the trained model'
    const timeoutError = () => new CollectiveTimeoutError('E_TIMEOUT', `rank ${this.rank} streamed ${what} to the coordinator at ${this.endpoint} and got no answer within ${timeoutMs} ms.`, { rank: this.rank, step, expected: 'an OutputAck', got: 'no answer', timeoutMs })
    const answer = this.mailbox.next([MessageType.OutputAck, MessageType.Abort, MessageType.Shutdown], timeoutMs, timeoutError)
    answer.catch(() => undefined) // awaited below; handled if the send fails first
    await this.send(MessageType.OutputCommit, { ...at, files: files.map(([name]) => name), sizes: files.map(([, bytes]) => String(bytes.byteLength)), ...(manifest !== undefined ? { manifest } : {}) })
    const message = await answer
    if (message.type === MessageType.Abort) throw errorFromWire(message.error ?? closedError(message.reason))
    if (message.type !== MessageType.OutputAck) throw errorFromWire(closedError('the job ended while rank 0 streamed its output'))
    if (message.error !== undefined) throw errorFromWire(message.error)
    return message.path ?? '(the coordinator\'s --out)'
  }

  /**
   * Asks the coordinator for the checkpoint at `path` (in its --out, which this machine does
   * not see) and resolves with its manifest text and files, assembled from OutputParts.
   * Rejects with the coordinator's error, an Abort, or after `timeoutMs`.
   */
  async fetchCheckpoint(path: string, timeoutMs: number): Promise<{ manifest: string; files: Map<string, Uint8Array> }> {
    const parts = new Map<string, { offset: number; data: Uint8Array }[]>()
    this.mailbox.onOutputPart = (message) => {
      const list = parts.get(message.file) ?? []
      list.push({ offset: message.offset, data: new Uint8Array(message.data) })
      parts.set(message.file, list)
    }
    try {
      const timeoutError = () => new CollectiveTimeoutError('E_TIMEOUT', `rank ${this.rank} asked the coordinator at ${this.endpoint} for checkpoint ${path} and got it not within ${timeoutMs} ms.`, { rank: this.rank, expected: 'the checkpoint', got: 'not all of it', timeoutMs })
      const answer = this.mailbox.next([MessageType.OutputCommit, MessageType.OutputAck, MessageType.Abort, MessageType.Shutdown], timeoutMs, timeoutError)
      answer.catch(() => undefined) // awaited below; handled if the send fails first
      await this.send(MessageType.OutputRequest, { rank: this.rank, round: this.round, path })
      const message = await answer
      if (message.type === MessageType.Abort) throw errorFromWire(message.error ?? closedError(message.reason))
      if (message.type === MessageType.OutputAck) throw errorFromWire(message.error ?? closedError('the coordinator sent no checkpoint'))
      if (message.type !== MessageType.OutputCommit) throw errorFromWire(closedError('the job ended while rank 0 fetched its checkpoint'))
      const files = new Map<string, Uint8Array>()
      for (const [i, name] of message.files.entries()) {
        const size = Number(message.sizes[i])
        const bytes = new Uint8Array(size)
        // Every byte must have come: parts in order of offset, without gaps or overlaps.
        let covered = 0
        for (const part of (parts.get(name) ?? []).sort((a, b) => a.offset - b.offset)) {
          if (part.offset !== covered || part.offset + part.data.byteLength > size) break
          bytes.set(part.data, part.offset)
          covered += part.data.byteLength
        }
        if (covered !== size) throw new CollectiveAbortedError('E_BAD_FRAME', `rank ${this.rank} got ${covered} of the ${size} bytes of ${name} of checkpoint ${path} from the coordinator; parts were lost on the way. Try again, or resume with rank 0 on the coordinator's machine.`, { rank: this.rank, expected: size, got: covered })
        files.set(name, bytes)
      }
      return { manifest: message.manifest ?? '', files }
    } finally {
      this.mailbox.onOutputPart = () => {}
    }
  }

  /** Calls `callback` when the coordinator asks for a graceful stop (Ctrl-C or SIGTERM to the launcher). */
  onStopRequest(callback: (reason: string) => void): void {
    this.mailbox.onStopRequest = (reason) => {
      this.mailbox.log(`${this.mailbox.prefix()} the coordinator asks to stop: ${reason}; stopping at the next step boundary.`)
      callback(reason)
    }
  }

  /** Calls `callback` when the coordinator ends the job normally (at once if it already did). */
  onShutdown(callback: (reason: string) => void): () => void {
    return this.mailbox.on(MessageType.Shutdown, (m) => callback(m.reason))
  }

  /** Stops heartbeats and the liveness thread, fails pending barriers, flushes queued messages (up to lingerMs) and closes the socket. */
  async close(options: { lingerMs?: number } = {}): Promise<void> {
    this.stopHeartbeats()
    this.watch.stop()
    await this.liveness.close()
    this.mailbox.close(new DistError('E_CLOSED', `rank ${this.rank} closed its connection to the coordinator.`, { rank: this.rank }))
    await this.socket.close({ lingerMs: options.lingerMs ?? 1000 })
  }

  private send<T extends ControlMessage['type']>(type: T, fields: MessageFields<Extract<ControlMessage, { type: T }>>, options?: { droppable?: boolean }): Promise<void> {
    return this.socket.send(controlMessage(type, this.jobId, fields), options)
  }

  /** `send`, settled within the silence limit, and at once when the coordinator went silent. */
  private sendWithin<T extends ControlMessage['type']>(type: T, fields: MessageFields<Extract<ControlMessage, { type: T }>>): Promise<void> {
    if (this.watch.silence !== undefined) return Promise.reject(this.watch.silence)
    const limitMs = this.watch.limitMs
    return new Promise((resolve, reject) => {
      const finish = (error?: Error) => {
        clearTimeout(timer)
        unsubscribe()
        if (error === undefined) resolve()
        else reject(error)
      }
      const timedOut = () => finish(new CollectiveTimeoutError('E_TIMEOUT', `rank ${this.rank} could not hand its ${messageTypeName(type)} to the coordinator at ${this.endpoint} within ${limitMs} ms (heartbeatIntervalMs × heartbeatMaxMissed); the coordinator is not taking messages. Is it still running?`, { rank: this.rank, expected: `sent within ${limitMs} ms`, got: 'still queued', timeoutMs: limitMs }))
      // "Not taking messages" is only true of a coordinator still heard from. One that is falling
      // silent (its last keep-alive may have been read late, after this send began) is given
      // until the watch decides, so that its silence, the real cause, is what this rejects with.
      let timer = setTimeout(() => {
        const untilSilentMs = this.watch.msUntilSilent()
        if (untilSilentMs === undefined || this.watch.heardWithin(2 * this.watch.intervalMs)) timedOut()
        else timer = setTimeout(timedOut, untilSilentMs + this.watch.checkEveryMs + 50)
      }, limitMs)
      const unsubscribe = this.watch.whenSilent(finish)
      this.send(type, fields).then(() => finish(), finish)
    })
  }
}

/**
 * Watches for the coordinator's silence: once armed with its keep-alive rate, it aborts
 * through the mailbox (as if an Abort came) when nothing was heard for intervalMs × maxMissed.
 */
class SilenceWatch {
  /** The error of the silence, once it happened. */
  silence: DistError | undefined
  private timer: NodeJS.Timeout | undefined
  private interval = 0
  private maxMissed = 0
  private readonly listeners = new Set<(error: DistError) => void>()
  /** When the coordinator was last heard elsewhere than in the mailbox (by the liveness thread), 0 if never. */
  alsoHeardAt: () => number = () => 0

  /** `who` names this worker in the silence error: its pid and host, then its rank. */
  constructor(private readonly mailbox: Mailbox, private readonly endpoint: string, private readonly jobId: string, public who: string) {}

  get limitMs(): number { return this.intervalMs * this.maxMissed }
  get intervalMs(): number { return this.interval }
  get checkEveryMs(): number { return Math.max(10, Math.min(1000, this.interval / 4)) }

  /** Whether the coordinator was heard within the last `ms`. */
  heardWithin(ms: number): boolean {
    return Date.now() - this.lastHeardAt() <= ms
  }

  /** How long until the silence limit is passed (≤ 0: passed, the next check reports it); undefined before the watch is armed. */
  msUntilSilent(): number | undefined {
    if (this.timer === undefined || this.silence !== undefined) return undefined
    return Math.max(0, this.lastHeardAt() + this.limitMs - Date.now())
  }

  private lastHeardAt(): number {
    return Math.max(this.mailbox.lastHeardAt, this.alsoHeardAt())
  }

  arm(intervalMs: number, maxMissed: number): void {
    if (this.silence !== undefined || (this.timer !== undefined && intervalMs === this.interval && maxMissed === this.maxMissed)) return
    this.interval = intervalMs
    this.maxMissed = maxMissed
    clearInterval(this.timer)
    this.timer = setInterval(() => this.check(), this.checkEveryMs)
    this.timer.unref()
  }

  /** Calls `callback` with the silence error when it happens; returns an unsubscribe function. */
  whenSilent(callback: (error: DistError) => void): () => void {
    this.listeners.add(callback)
    return () => this.listeners.delete(callback)
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  private check(): void {
    const silentMs = Date.now() - this.lastHeardAt()
    if (silentMs <= this.limitMs) return
    this.stop()
    const seconds = (silentMs / 1000).toFixed(1)
    const missed = Math.floor(silentMs / this.interval)
    const reason = `the coordinator at ${this.endpoint} has been silent for ${seconds} s (${missed} keep-alives missed); stopping.`
    this.silence = new PeerLostError('E_PEER_LOST', `${this.who} heard nothing from the coordinator at ${this.endpoint} for ${seconds} s; it sends a keep-alive every ${this.interval} ms and ${this.maxMissed} missed ones mean it is gone. See the coordinator's log, or raise --heartbeat-max-missed if it is only slow.`, { expected: `a keep-alive every ${this.interval} ms`, got: `nothing for ${silentMs} ms` })
    this.mailbox.abortLocally(this.jobId, reason, this.silence.toWire())
    for (const listener of [...this.listeners]) listener(this.silence)
  }
}

function toWire(error: unknown): WireError {
  if (error instanceof DistError) return error.toWire()
  const e = error instanceof Error ? error : new Error(String(error))
  return { name: e.name, code: 'E_TASK', message: e.message, context: {} }
}

function closedError(reason: string): WireError {
  return new CollectiveAbortedError('E_CLOSED', `The coordinator ended the job: ${reason}.`).toWire()
}
