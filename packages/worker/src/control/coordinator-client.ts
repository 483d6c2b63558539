/**
 * A worker's side of the control plane: joins the coordinator, then heartbeats, waits at
 * barriers, reports metrics and its final result, and hears Abort and Shutdown.
 *
 *   const client = await CoordinatorClient.join(endpoint, { jobId, host, pid, dataEndpoints, backend }, { timeoutMs: 60_000 })
 *   client.startHeartbeats(() => step)
 *   await client.barrier('layout-checked', 30_000)
 */
import {
  CollectiveAbortedError, CollectiveTimeoutError, DistError, MessageType, connectControlClient, controlMessage, errorFromWire,
  type Assignment, type ControlClient, type ControlMessage, type ControlReceipt, type JoinRequest, type MessageFields,
  type StepMetrics, type WireError, type WorkerDone,
} from '@ringtrain/core'
import { Mailbox } from './mailbox.js'

export type JoinFields = MessageFields<JoinRequest> & { jobId: string }
export type StepReport = Omit<MessageFields<StepMetrics>, 'rank' | 'round'>
export type DoneReport = Omit<MessageFields<WorkerDone>, 'rank'>

export interface JoinOptions {
  /** How long to wait for the Assignment (the world fills only when every worker joined). */
  timeoutMs: number
  /** Where whole-sentence log lines go; stderr by default. */
  log?: (line: string) => void
}

export class CoordinatorClient {
  private heartbeatTimer: NodeJS.Timeout | undefined
  private getStep: () => number = () => 0

  private constructor(
    readonly endpoint: string,
    readonly assignment: Assignment,
    private readonly socket: ControlClient,
    private readonly mailbox: Mailbox,
  ) {
    mailbox.prefix = () => `[rank ${this.rank}/${this.worldSize} round ${this.round} step ${this.getStep()}]`
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
      log: (line) => log(`${mailbox.prefix()} ${line}`),
      onReceive: (receipt: ControlReceipt) => mailbox.receive(receipt),
    })
    const { jobId, ...joinFields } = fields
    try {
      await socket.send(controlMessage(MessageType.JoinRequest, jobId, joinFields))
      const timeoutError = () => new CollectiveTimeoutError('E_TIMEOUT', `${who} waited ${options.timeoutMs} ms for the coordinator at ${endpoint} to assign it a rank in job ${JSON.stringify(jobId)}. Check that the coordinator runs there and that all of its workers were started.`, { expected: 'an Assignment', got: 'no answer', timeoutMs: options.timeoutMs })
      const answer = await mailbox.next([MessageType.Assignment, MessageType.Reject, MessageType.Abort, MessageType.Shutdown], options.timeoutMs, timeoutError)
      if (answer.type === MessageType.Assignment) {
        const client = new CoordinatorClient(endpoint, answer, socket, mailbox)
        log(`${mailbox.prefix()} joined round ${answer.round} of job ${JSON.stringify(jobId)} as rank ${answer.rank} in a world of ${answer.worldSize} (coordinator ${endpoint}).`)
        return client
      }
      if (answer.type === MessageType.Reject) throw errorFromWire(answer.error)
      if (answer.type === MessageType.Abort) throw errorFromWire(answer.error ?? closedError(answer.reason))
      throw errorFromWire(closedError(answer.type === MessageType.Shutdown ? answer.reason : `unexpected ${answer.type}`))
    } catch (error) {
      await socket.close({ lingerMs: 0 })
      throw error
    }
  }

  /** Sends a Heartbeat now and every heartbeatIntervalMs of the job config, with the step `getStep` returns. */
  startHeartbeats(getStep: () => number): void {
    this.getStep = getStep
    this.stopHeartbeats()
    const beat = () => void this.send(MessageType.Heartbeat, { rank: this.rank, round: this.round, step: getStep() })
    beat()
    this.heartbeatTimer = setInterval(beat, this.assignment.config.heartbeatIntervalMs)
    this.heartbeatTimer.unref()
  }

  stopHeartbeats(): void {
    clearInterval(this.heartbeatTimer)
    this.heartbeatTimer = undefined
  }

  /** Resolves when every rank reached barrier `name`; rejects on timeout (naming the barrier) or on Abort. */
  async barrier(name: string, timeoutMs: number): Promise<void> {
    const released = this.mailbox.waitForRelease(name, timeoutMs, () => new CollectiveTimeoutError('E_TIMEOUT', `rank ${this.rank} waited ${timeoutMs} ms at barrier ${JSON.stringify(name)} (round ${this.round}) for the other ranks; see the coordinator log for which rank is missing.`, { rank: this.rank, round: this.round, phase: name }))
    await this.send(MessageType.BarrierRequest, { rank: this.rank, round: this.round, name })
    await released
  }

  sendMetrics(metrics: StepReport): Promise<void> {
    return this.send(MessageType.StepMetrics, { ...metrics, rank: this.rank, round: this.round })
  }

  /** Sends this rank's final report; the coordinator answers with Shutdown once every rank is done. */
  done(report: DoneReport): Promise<void> {
    return this.send(MessageType.WorkerDone, { ...report, rank: this.rank })
  }

  /** Reports this worker's error to the coordinator, which stops the job with it as the root cause. */
  failed(error: unknown): Promise<void> {
    return this.send(MessageType.WorkerFailed, { rank: this.rank, error: toWire(error) })
  }

  /** Calls `callback` when the coordinator aborts the job (at once if it already did). Returns an unsubscribe function. */
  onAbort(callback: (reason: string, error: DistError) => void): () => void {
    return this.mailbox.on(MessageType.Abort, (m) => callback(m.reason, errorFromWire(m.error ?? closedError(m.reason))))
  }

  /** Calls `callback` when the coordinator ends the job normally (at once if it already did). */
  onShutdown(callback: (reason: string) => void): () => void {
    return this.mailbox.on(MessageType.Shutdown, (m) => callback(m.reason))
  }

  /** Stops heartbeats, fails pending barriers, flushes queued messages (up to lingerMs) and closes the socket. */
  async close(options: { lingerMs?: number } = {}): Promise<void> {
    this.stopHeartbeats()
    this.mailbox.close(new DistError('E_CLOSED', `rank ${this.rank} closed its connection to the coordinator.`, { rank: this.rank }))
    await this.socket.close({ lingerMs: options.lingerMs ?? 1000 })
  }

  private send<T extends ControlMessage['type']>(type: T, fields: MessageFields<Extract<ControlMessage, { type: T }>>): Promise<void> {
    return this.socket.send(controlMessage(type, this.jobId, fields))
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
