/**
 * Where the coordinator's messages land on a worker: answers to a join, barrier releases,
 * keep-alives, and Abort/Shutdown (remembered, so a listener added late still hears them).
 * Invalid messages are logged with the worker's prefix and dropped. Anything received, even
 * an invalid message, proves the coordinator alive (`lastHeardAt`).
 */
import {
  CollectiveAbortedError, DistError, MessageType, controlMessage, errorFromWire, messageTypeName,
  type Abort, type ControlMessage, type ControlReceipt, type Shutdown, type WireError,
} from '@ringtrain/core'

export type KeepAlive = Extract<ControlMessage, { type: typeof MessageType.KeepAlive }>

type Waiter = { types: number[]; resolve(message: ControlMessage): void; reject(error: Error): void; timer: NodeJS.Timeout }
type Release = { resolve(): void; reject(error: Error): void; timer: NodeJS.Timeout }
type Ending = Abort | Shutdown

export class Mailbox {
  private readonly unclaimed: ControlMessage[] = []
  private readonly waiters = new Set<Waiter>()
  private readonly releases = new Map<string, Release>()
  private readonly endings = new Map<number, Ending>()
  private readonly listeners = new Map<number, Set<(message: Ending) => void>>()

  /** Date.now() of the last message from the coordinator (or of the mailbox's creation). */
  lastHeardAt = Date.now()
  /** Called on each KeepAlive from the coordinator. */
  onKeepAlive: (message: KeepAlive) => void = () => {}
  /** Called when the coordinator asks for a graceful stop. */
  onStopRequest: (reason: string) => void = () => {}
  /** Called with each part of a checkpoint the coordinator sends (a resume whose checkpoint this machine does not see). */
  onOutputPart: (message: Extract<ControlMessage, { type: typeof MessageType.OutputPart }>) => void = (message) => this.log(`${this.prefix()} got part of ${message.file} that it did not ask for; ignored it.`)
  /** Called with each DataChunk (`--serve-data`: samples this worker asked for). */
  onDataChunk: (message: Extract<ControlMessage, { type: typeof MessageType.DataChunk }>) => void = (message) => this.log(`${this.prefix()} got samples of split '${message.split}' that it did not ask for; ignored them.`)
  /** Called when the coordinator ends a round (elastic mode). */
  onRegroup: (message: Extract<ControlMessage, { type: typeof MessageType.Regroup }>) => void = () => {}

  constructor(readonly log: (line: string) => void, public prefix: () => string) {}

  receive(receipt: ControlReceipt): void {
    this.lastHeardAt = Date.now()
    if (receipt.kind === 'invalid') return this.log(`${this.prefix()} ${receipt.error.message}`)
    const message = receipt.message
    if (message.type === MessageType.KeepAlive) return this.onKeepAlive(message)
    if (message.type === MessageType.BarrierRelease) {
      const release = this.releases.get(message.name)
      if (release === undefined) return this.log(`${this.prefix()} got a release of barrier ${JSON.stringify(message.name)} it is not waiting at; ignored it.`)
      this.releases.delete(message.name)
      clearTimeout(release.timer)
      return release.resolve()
    }
    if (message.type === MessageType.StopRequest) return this.onStopRequest(message.reason)
    if (message.type === MessageType.Regroup) return this.onRegroup(message)
    if (message.type === MessageType.OutputPart) return this.onOutputPart(message)
    if (message.type === MessageType.DataChunk) return this.onDataChunk(message)
    if (message.type === MessageType.Abort || message.type === MessageType.Shutdown) this.end(message)
    this.deliver(message)
  }

  /**
   * Aborts the job on this worker's own finding (the coordinator went silent): logs `reason`
   * and acts as if the coordinator had sent an Abort, so the same listeners and waits end.
   */
  abortLocally(jobId: string, reason: string, error: WireError): void {
    if (this.endings.has(MessageType.Abort)) return
    const message = controlMessage(MessageType.Abort, jobId, { reason, error })
    this.end(message, `${this.prefix()} ${reason}`)
    this.deliver(message)
  }

  private deliver(message: ControlMessage): void {
    for (const waiter of this.waiters) {
      if (!waiter.types.includes(message.type)) continue
      this.settle(waiter)
      return waiter.resolve(message)
    }
    if (message.type === MessageType.Abort || message.type === MessageType.Shutdown) return
    if (message.type === MessageType.Assignment || message.type === MessageType.Reject) return void this.unclaimed.push(message)
    this.log(`${this.prefix()} got a ${messageTypeName(message.type)} from the coordinator, which a worker does not expect; ignored it.`)
  }

  /** The Abort or Shutdown that ended this mailbox, if one came (or was raised locally). */
  ending<T extends Ending['type']>(type: T): Extract<Ending, { type: T }> | undefined {
    return this.endings.get(type) as Extract<Ending, { type: T }> | undefined
  }

  /** The next message of one of `types` (one that already arrived unclaimed counts). */
  next(types: number[], timeoutMs: number, timeoutError: () => Error): Promise<ControlMessage> {
    const index = this.unclaimed.findIndex((m) => types.includes(m.type))
    if (index >= 0) return Promise.resolve(this.unclaimed.splice(index, 1)[0]!)
    const ending = [...this.endings.values()].find((m) => types.includes(m.type))
    if (ending !== undefined) return Promise.resolve(ending)
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { types, resolve, reject, timer: setTimeout(() => { this.settle(waiter); reject(timeoutError()) }, timeoutMs) }
      this.waiters.add(waiter)
    })
  }

  waitForRelease(name: string, timeoutMs: number, timeoutError: () => Error): Promise<void> {
    const ending = this.endings.get(MessageType.Abort) ?? this.endings.get(MessageType.Shutdown)
    if (ending !== undefined) return Promise.reject(endingError(ending))
    if (this.releases.has(name)) return Promise.reject(new DistError('E_INTERNAL', `barrier ${JSON.stringify(name)} is already being waited at; barrier names must be unique among barriers in flight.`))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.releases.delete(name); reject(timeoutError()) }, timeoutMs)
      this.releases.set(name, { resolve, reject, timer })
    })
  }

  /** Subscribes to Abort or Shutdown; calls at once if it already came. */
  on<T extends Ending['type']>(type: T, callback: (message: Extract<Ending, { type: T }>) => void): () => void {
    const set = this.listeners.get(type) ?? new Set()
    this.listeners.set(type, set)
    const listener = callback as (message: Ending) => void
    set.add(listener)
    const already = this.endings.get(type)
    if (already !== undefined) queueMicrotask(() => { if (set.has(listener)) listener(already) })
    return () => set.delete(listener)
  }

  /** Rejects everything still waiting with `error`. */
  close(error: Error): void {
    for (const waiter of this.waiters) { this.settle(waiter); waiter.reject(error) }
    for (const [name, release] of this.releases) { this.releases.delete(name); clearTimeout(release.timer); release.reject(error) }
  }

  private end(message: Ending, line?: string): void {
    if (this.endings.has(message.type)) return
    this.endings.set(message.type, message)
    const reason = message.type === MessageType.Abort ? `the coordinator aborted the job: ${message.reason}` : `the coordinator shut the job down: ${message.reason}`
    this.log(line ?? `${this.prefix()} ${reason}${/[.!?]$/.test(reason) ? '' : '.'}`)
    for (const [name, release] of this.releases) { this.releases.delete(name); clearTimeout(release.timer); release.reject(endingError(message)) }
    for (const listener of this.listeners.get(message.type) ?? []) {
      try { listener(message) } catch (error) { this.log(`${this.prefix()} an ${messageTypeName(message.type)} listener failed: ${(error as Error).message}`) }
    }
  }

  private settle(waiter: Waiter): void {
    clearTimeout(waiter.timer)
    this.waiters.delete(waiter)
  }
}

function endingError(message: Ending): DistError {
  if (message.type === MessageType.Abort && message.error !== undefined) return errorFromWire(message.error)
  return new CollectiveAbortedError('E_CLOSED', `The coordinator ended the job while this worker waited: ${message.reason}.`)
}
