/**
 * The collective schedule of one round: every collective a worker calls goes through the
 * round's ProcessGroup, which hands out op ids in call order (PyTorch's ProcessGroup keeps
 * the same sequence number for the same reason). No call site numbers its own op, so two
 * call sites can never collide, a new collective cannot forget one, and ranks that call
 * the same collectives in the same order tag them identically. A rank that calls another
 * collective, or skips one, fails with E_TAG_MISMATCH at the first message (the tag names
 * the collective, Note [Tags carry the round]) instead of mixing bytes.
 *
 * A new round (a new membership) gets a new group over its new transport, whose op ids
 * start again at 0.
 *
 * Note [Where a rank stands]
 * The group keeps `position`: the collective in flight (name, op, step), the phase it waits
 * in and for which peer, and since when; between calls, the op the next call gets and since
 * when none is in flight. It changes when a call starts and ends and once per phase (ring
 * step, barrier round), never per segment, and `onPosition` hears each change. A worker
 * publishes it to its liveness thread, so the coordinator's stall report can say where every
 * rank is even when a rank's main thread is stuck in synchronous compute (its last position,
 * `between collectives` since then, tells as much).
 */
import { ConfigError, DistError, FrameError, InternalError } from '../errors.js'
import { decode, encode } from '../protocol/codec.js'
import type { Transport } from '../transport/transport.js'
import type { CollectiveOptions } from './collective-call.js'
import { allGather } from './all-gather.js'
import { barrier } from './barrier.js'
import { broadcast, broadcastBytes } from './broadcast.js'
import { ringAllReduce } from './ring-all-reduce.js'

export interface ProcessGroupOptions {
  /** The membership round this group's transport belongs to. */
  round: number
  /** Deadline of each call, in ms from its start, unless the call gives its own. */
  timeoutMs: number
  /** Bytes per transport message for all-reduce and broadcast (a multiple of 4). Tests make it tiny. */
  segmentBytes?: number
  /** Hears every change of `position` (see Note [Where a rank stands]); must be cheap and must not throw. */
  onPosition?: (position: CollectivePosition) => void
}

/** Where this rank stands in the round's collective schedule (Note [Where a rank stands]). */
export interface CollectivePosition {
  /** The step of the call in flight, or of the last call (0 before any). */
  step: number
  /** The op id of the call in flight; between calls, the op id the next call will get. */
  op: number
  /** The collective in flight (`allReduce`, `broadcast`, `broadcastValue`, `allGather`, `barrier`); absent between calls. */
  collective?: string
  /** `starting`, `reduce-scatter, ring step 2 of 3, from rank 1`, `waiting for its sends to leave`; `between collectives`, or `failed: E_TIMEOUT` after a failed call. */
  phase: string
  /** The peer whose message the call waits for, if it waits for one. */
  waitingFor?: number
  /** When this phase began (Date.now(), ms). */
  sinceMs: number
}

/** Where a call stands: the optimizer step being computed (0 before training starts). */
export interface CallAt {
  step: number
  /** This call's deadline instead of the group's. */
  timeoutMs?: number
}

export class ProcessGroup {
  private nextOp = 0
  private inFlight: string | undefined
  private failure: Error | undefined
  private where: CollectivePosition = { step: 0, op: 0, phase: 'between collectives', sinceMs: Date.now() }

  constructor(
    readonly transport: Transport,
    private readonly options: ProcessGroupOptions,
  ) {}

  /** Where this rank stands now (Note [Where a rank stands]); a fresh copy. */
  get position(): CollectivePosition {
    return { ...this.where }
  }

  get rank(): number {
    return this.transport.rank
  }

  get worldSize(): number {
    return this.transport.worldSize
  }

  get round(): number {
    return this.options.round
  }

  /** How many collective calls this group has started: the op id the next one gets. */
  get opsIssued(): number {
    return this.nextOp
  }

  /** Averages (or sums) `data` in place across ranks; see `ringAllReduce`. A synchronization point. */
  allReduce(data: Float32Array, at: CallAt & { average?: boolean; segmentBytes?: number }): Promise<void> {
    const segmentBytes = at.segmentBytes ?? this.options.segmentBytes
    return this.run('allReduce', at, (o) => ringAllReduce(this.transport, data, { ...o, average: at.average ?? true, segmentBytes }))
  }

  /** Rank `root`'s `data` into every rank's `data` (same byte length everywhere); see `broadcast`. */
  broadcast(data: Float32Array | Uint8Array, at: CallAt & { root?: number }): Promise<void> {
    return this.run('broadcast', at, (o) => broadcast(this.transport, data, { ...o, root: at.root ?? 0, segmentBytes: this.options.segmentBytes }))
  }

  /**
   * Rank `root`'s `value` (anything msgpack encodes: records, strings, numbers, typed arrays)
   * on every rank, as one broadcast of its encoded bytes. Other ranks' `value` is ignored.
   * For small set-up records, not tensors. Fails with `FrameError` (E_BAD_FRAME) when the
   * bytes that arrive do not decode.
   */
  broadcastValue<T>(value: T, at: CallAt & { root?: number }): Promise<T> {
    return this.run('broadcastValue', at, async (o) => {
      const root = at.root ?? 0
      const bytes = await broadcastBytes(this.transport, this.rank === root ? encode(value) : undefined, { ...o, root, segmentBytes: this.options.segmentBytes })
      try {
        return decode(bytes) as T
      } catch (cause) {
        throw new FrameError('E_BAD_FRAME', `rank ${this.rank} could not decode the ${bytes.byteLength} bytes that root ${root} broadcast as op ${o.op} at step ${o.step}: ${(cause as Error).message}.`, { rank: this.rank, peer: root, op: o.op, step: o.step }, { cause })
      }
    })
  }

  /** Every rank's `data`, indexed by rank; see `allGather`. A synchronization point. */
  allGather(data: Float32Array, at: CallAt): Promise<Float32Array[]> {
    return this.run('allGather', at, (o) => allGather(this.transport, data, o))
  }

  /** Returns once every rank has entered it; see `barrier`. */
  barrier(at: CallAt): Promise<void> {
    return this.run('barrier', at, (o) => barrier(this.transport, o))
  }

  /**
   * Gives the call the next op id, at call time. Calls are one at a time (a second call in
   * flight would take the first one's frames, Note [Transport semantics]), and a failed
   * call (other than a `ConfigError` for bad options, raised before anything is sent) leaves
   * the round's transport unusable: later calls reject with the same error, and the caller
   * moves to a new round.
   */
  private async run<T>(name: string, at: CallAt, call: (options: Required<Omit<CollectiveOptions, 'onPhase'>> & Pick<CollectiveOptions, 'onPhase'>) => Promise<T>): Promise<T> {
    const op = this.nextOp++
    if (this.failure !== undefined) throw this.failure
    if (this.inFlight !== undefined) {
      throw new InternalError(`rank ${this.rank} called ${name} as op ${op} at step ${at.step} while ${this.inFlight} was still in flight; collectives of one group run one at a time.`, { rank: this.rank, op, step: at.step })
    }
    this.inFlight = `${name} op ${op}`
    const step = at.step
    this.moveTo({ step, op, collective: name, phase: 'starting', sinceMs: Date.now() })
    const onPhase = (phase: string, waitingFor: number | undefined) => {
      this.moveTo({ step, op, collective: name, phase, ...(waitingFor !== undefined ? { waitingFor } : {}), sinceMs: Date.now() })
    }
    let ended = 'between collectives'
    try {
      return await call({ round: this.options.round, step, op, timeoutMs: at.timeoutMs ?? this.options.timeoutMs, onPhase })
    } catch (error) {
      // Bad options fail before anything is sent; anything else may leave frames behind.
      if (!(error instanceof ConfigError)) this.failure = error instanceof Error ? error : new InternalError(`${name} op ${op} failed with a non-error: ${String(error)}`)
      ended = `failed in ${name} op ${op}${error instanceof DistError ? `: ${error.code}` : ''}`
      throw error
    } finally {
      this.inFlight = undefined
      this.moveTo({ step, op: this.nextOp, phase: ended, sinceMs: Date.now() })
    }
  }

  private moveTo(position: CollectivePosition): void {
    this.where = position
    this.options.onPosition?.({ ...position })
  }
}
