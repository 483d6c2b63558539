/**
 * Per-peer FIFO of received messages and of waiting `recv`s, with tag checks and deadlines.
 * Both transports deliver into one of these, so they share Note [Transport semantics]
 * (transport.ts) by construction.
 */
import { CollectiveTimeoutError, DistError, FrameError, StaleRoundError } from '../errors.js'
import { formatTag, tagsEqual, type Tag } from './transport.js'

type Entry = { tag: Tag; bytes: Uint8Array } | { error: DistError }

interface Waiter {
  tag: Tag
  resolve: (bytes: Uint8Array) => void
  reject: (error: unknown) => void
  timer: NodeJS.Timeout
}

export class PeerInbox {
  private readonly queues: Entry[][]
  private readonly waiters: Waiter[][]
  private closedError: DistError | undefined

  constructor(
    private readonly rank: number,
    worldSize: number,
  ) {
    this.queues = Array.from({ length: worldSize }, () => [])
    this.waiters = Array.from({ length: worldSize }, () => [])
  }

  /** A message from `peer` arrived. */
  deliver(peer: number, tag: Tag, bytes: Uint8Array): void {
    this.push(peer, { tag, bytes })
  }

  /** Something from `peer` arrived that must fail the next `recv` from it. */
  deliverError(peer: number, error: DistError): void {
    this.push(peer, { error })
  }

  take(peer: number, tag: Tag, timeoutMs: number): Promise<Uint8Array> {
    if (this.closedError) return Promise.reject(this.closedError)
    const queue = this.queues[peer]!
    const entry = this.waiters[peer]!.length === 0 ? queue.shift() : undefined
    if (entry) {
      try {
        return Promise.resolve(this.check(peer, tag, entry))
      } catch (error) {
        return Promise.reject(error)
      }
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        tag,
        resolve,
        reject,
        timer: setTimeout(() => {
          const list = this.waiters[peer]!
          const index = list.indexOf(waiter)
          if (index >= 0) list.splice(index, 1)
          reject(
            new CollectiveTimeoutError(
              'E_TIMEOUT',
              `rank ${this.rank} waited ${timeoutMs} ms for a message from rank ${peer} (${formatTag(tag)}); nothing arrived.`,
              { rank: this.rank, peer, round: tag.round, step: tag.step, op: tag.op, expected: tag, timeoutMs },
            ),
          )
        }, timeoutMs),
      }
      this.waiters[peer]!.push(waiter)
    })
  }

  /** Rejects every waiting and later `take` with `error`. */
  close(error: DistError): void {
    this.closedError ??= error
    for (const list of this.waiters) {
      for (const waiter of list.splice(0)) {
        clearTimeout(waiter.timer)
        waiter.reject(error)
      }
    }
    for (const queue of this.queues) queue.length = 0
  }

  /** Fails the waiting and later `take`s for one peer (it is gone). */
  failPeer(peer: number, error: DistError): void {
    for (const waiter of this.waiters[peer]!.splice(0)) {
      clearTimeout(waiter.timer)
      waiter.reject(error)
    }
    this.queues[peer]!.push({ error })
  }

  private push(peer: number, entry: Entry): void {
    if (this.closedError) return
    const waiter = this.waiters[peer]!.shift()
    if (!waiter) {
      this.queues[peer]!.push(entry)
      return
    }
    clearTimeout(waiter.timer)
    try {
      waiter.resolve(this.check(peer, waiter.tag, entry))
    } catch (error) {
      waiter.reject(error)
    }
  }

  private check(peer: number, expected: Tag, entry: Entry): Uint8Array {
    if ('error' in entry) {
      // A lost peer stays lost: keep the error at the head for later receives.
      if (entry.error.code === 'E_PEER_LOST') this.queues[peer]!.unshift(entry)
      throw entry.error
    }
    const got = entry.tag
    if (tagsEqual(got, expected)) return entry.bytes
    if (got.round !== expected.round) {
      throw new StaleRoundError(
        'E_STALE_ROUND',
        `rank ${this.rank} got a frame of round ${got.round} from rank ${peer} while in round ${expected.round}; dropped it (${formatTag(got)}).`,
        { rank: this.rank, peer, round: expected.round, expected: expected.round, got: got.round },
      )
    }
    throw new FrameError(
      'E_TAG_MISMATCH',
      `rank ${this.rank} expected a frame with ${formatTag(expected)} from rank ${peer} but got ${formatTag(got)}; dropped it. Ranks are running different collectives: check that every rank calls the same ops in the same order.`,
      { rank: this.rank, peer, round: expected.round, step: expected.step, op: expected.op, expected, got },
    )
  }
}
