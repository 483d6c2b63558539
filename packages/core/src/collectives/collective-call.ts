/**
 * What every collective call shares: its tag prefix, its deadline, receives that name the
 * collective and phase when they time out, and sends kept in flight until the end.
 */
import { CollectiveTimeoutError, ConfigError, DistError, FrameError, describeBytes } from '../errors.js'
import { CollectiveKind, type CollectiveName, type Tag, type Transport } from '../transport/transport.js'

/**
 * Where a collective call stands in the job. Every rank passes the same values to the same
 * call; `ProcessGroup` fills in `round` and `op` so that call sites cannot get them wrong.
 */
export interface CollectiveOptions {
  /** Membership round (rendezvous generation); frames of another round are rejected. Default 0. */
  round?: number
  /** The optimizer step being computed (0 before training starts). */
  step: number
  /** Sequence number of this call within the round, in call order: the same on every rank. */
  op: number
  /** Deadline for the whole call, in milliseconds from its start. */
  timeoutMs: number
  /**
   * Told each time the call starts waiting in a new phase (`reduce-scatter, ring step 2 of 3`,
   * and the peer it waits for, if one): once per ring step, never per segment or byte.
   * `ProcessGroup` turns it into its `position` (Note [Where a rank stands]).
   */
  onPhase?: (phase: string, waitingFor: number | undefined) => void
}

export class CollectiveCall {
  readonly rank: number
  readonly worldSize: number
  readonly round: number
  readonly deadlineAt: number
  private readonly sends: Promise<void>[] = []
  /** Sends per peer that the transport has not yet taken. */
  private readonly unsent = new Map<number, number>()
  private sendError: unknown
  /** The phase last told to `onPhase`, so that each segment of one ring step does not tell it again. */
  private phaseKey: string | undefined

  constructor(
    readonly transport: Transport,
    /** As it appears in messages and tags: `allReduce`, `broadcast`, `allGather`, `barrier`. */
    readonly collective: CollectiveName,
    readonly options: CollectiveOptions,
  ) {
    const { timeoutMs } = options
    if (!(timeoutMs > 0)) {
      throw new ConfigError(`The timeout of ${collective} op ${options.op} (${timeoutMs} ms) must be greater than zero.`, { op: options.op, got: timeoutMs })
    }
    this.rank = transport.rank
    this.worldSize = transport.worldSize
    this.round = options.round ?? 0
    this.deadlineAt = performance.now() + timeoutMs
  }

  tag(ringStep: number, segment: number): Tag {
    return { round: this.round, step: this.options.step, op: this.options.op, collective: CollectiveKind[this.collective], ringStep, segment }
  }

  /** Starts a send and keeps it in flight; its failure surfaces at the next receive or at `finish()`. */
  send(peer: number, ringStep: number, segment: number, bytes: Uint8Array): void {
    const sending = this.transport.send(peer, this.tag(ringStep, segment), bytes)
    this.unsent.set(peer, (this.unsent.get(peer) ?? 0) + 1)
    sending.then(
      () => this.unsent.set(peer, this.unsent.get(peer)! - 1),
      (error: unknown) => { this.sendError ??= error },
    )
    this.sends.push(sending)
  }

  /**
   * Receives the next message from `peer` with the deadline that is left. A timeout is
   * rethrown as a `CollectiveTimeoutError` naming the collective and `phase` (transport's
   * error kept as `cause`). The returned promise is marked handled, so a receive posted
   * ahead and then abandoned on another error never becomes an unhandled rejection.
   */
  receive(peer: number, ringStep: number, segment: number, phase: () => string): Promise<Uint8Array> {
    const timeoutMs = Math.max(0, this.deadlineAt - performance.now())
    const receiving = this.sendError !== undefined ? Promise.reject(this.sendError)
      : this.transport.recv(peer, this.tag(ringStep, segment), { timeoutMs }).catch((error: unknown) => {
        if (error instanceof DistError && error.code === 'E_TIMEOUT') throw this.timeoutError(peer, phase(), error)
        throw error
      })
    receiving.catch(() => {})
    return receiving
  }

  /**
   * Says that the call now waits for `peer` (or only for its own sends, when undefined) in
   * the phase `key` names; `phase()` is built and told to `onPhase` only when `key` or
   * `peer` changed since the last time. Calls it before awaiting a receive.
   */
  waitingIn(key: string, peer: number | undefined, phase: () => string): void {
    const onPhase = this.options.onPhase
    if (onPhase === undefined) return
    const full = `${key}/${peer ?? ''}`
    if (full === this.phaseKey) return
    this.phaseKey = full
    onPhase(phase(), peer)
  }

  /** Hands a received message back to the transport: we read it and did not send it on. */
  release(bytes: Uint8Array): void {
    this.transport.release?.(bytes)
  }

  /** Fails with E_CHUNK_SIZE when a received message does not have the agreed size. */
  checkByteLength(bytes: Uint8Array, expected: number, peer: number, what: string, hint: string, ErrorClass = FrameError): void {
    if (bytes.byteLength === expected) return
    const { op, step } = this.options
    throw new ErrorClass(
      'E_CHUNK_SIZE',
      `rank ${this.rank} got ${bytes.byteLength} bytes for ${what} of ${this.collective} op ${op} at step ${step} (round ${this.round}) from rank ${peer}; expected ${describeBytes(expected)}. ${hint}`,
      { rank: this.rank, peer, round: this.round, step, op, expected, got: bytes.byteLength },
    )
  }

  /**
   * Waits for every send to be queued, until the call's deadline: a peer that stopped
   * reading fills its socket's queue, and a rank that only sends (a broadcast root) would
   * otherwise wait on it for ever.
   */
  async finish(): Promise<void> {
    if ([...this.unsent.values()].some((count) => count > 0)) {
      this.waitingIn('sending', undefined, () => 'waiting for its sends to leave')
    }
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.sendTimeoutError()), Math.max(0, this.deadlineAt - performance.now()))
    })
    try {
      await Promise.race([Promise.all(this.sends), deadline])
    } finally {
      clearTimeout(timer)
    }
  }

  private sendTimeoutError(): CollectiveTimeoutError {
    const { op, step, timeoutMs } = this.options
    const stuck = [...this.unsent].filter(([, count]) => count > 0)
    const peer = stuck[0]?.[0]
    const what = stuck.map(([p, count]) => `${count} message(s) to rank ${p}`).join(', ')
    return new CollectiveTimeoutError(
      'E_TIMEOUT',
      `rank ${this.rank} waited ${timeoutMs} ms in ${this.collective} op ${op} at step ${step} for its sends to leave; ${what} never did. The peer stopped reading (its socket queue is full): check that it is alive.`,
      { rank: this.rank, peer, round: this.round, step, op, phase: 'sending', timeoutMs },
    )
  }

  private timeoutError(peer: number, phase: string, cause: DistError): CollectiveTimeoutError {
    const { op, step, timeoutMs } = this.options
    return new CollectiveTimeoutError(
      'E_TIMEOUT',
      `rank ${this.rank} waited ${timeoutMs} ms in ${this.collective} op ${op} at step ${step} (${phase}) for rank ${peer}; nothing arrived. Check that rank ${peer} is alive and calls the same collectives in the same order.`,
      { rank: this.rank, peer, round: this.round, step, op, phase, timeoutMs },
      { cause },
    )
  }
}

/** `(a mod n)` in [0, n). */
export function mod(a: number, n: number): number {
  return ((a % n) + n) % n
}

/** The bytes of a Float32Array view, without copying. */
export function bytesOf(floats: Float32Array): Uint8Array {
  return new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength)
}

/** Checks `segmentBytes`: a positive multiple of 4 (whole float32). */
export function checkSegmentBytes(collective: string, segmentBytes: number): number {
  if (!Number.isInteger(segmentBytes) || segmentBytes < 4 || segmentBytes % 4 !== 0) {
    throw new ConfigError(`segmentBytes of ${collective} (${segmentBytes}) must be a positive multiple of 4 (whole float32).`, { got: segmentBytes })
  }
  return segmentBytes
}
