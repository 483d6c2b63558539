/**
 * Point-to-point bytes between the ranks of one world (one rendezvous round).
 *
 * Note [Transport semantics]
 * - Messages from one peer are delivered in the order that peer sent them (per-peer FIFO).
 * - `recv(peer, tag)` takes the next message from `peer`. If its tag is not exactly `tag`
 *   the promise rejects (a `StaleRoundError` when the round differs, a `FrameError` with
 *   code E_TAG_MISMATCH otherwise) and the message is dropped: a foreign frame is an error,
 *   never mixed into a result.
 * - `send()` resolves when the bytes are queued. The transport may keep a reference to
 *   `bytes` (zero-copy) until the peer has received them: the caller must not modify them
 *   until it knows the peer has them (for example because a later message from that peer
 *   depends on them). Collectives copy, or send from scratch they own, where that is not
 *   otherwise guaranteed. Received bytes are read-only for the receiver, which may hand
 *   them back with `release()` once it has consumed them (zeromq.ts frees them at once).
 * - Every `recv` has a deadline; past it the promise rejects with a
 *   `CollectiveTimeoutError` naming rank, peer and tag. Callers add their op and phase.
 * - After `close()`, pending and later calls reject with code E_CLOSED.
 */
export interface Transport {
  readonly rank: number
  readonly worldSize: number
  /** Resolves when `bytes` is queued for `peer`. Sends to one peer are delivered in order. */
  send(peer: number, tag: Tag, bytes: Uint8Array): Promise<void>
  /** Resolves with the next message from `peer`, which must carry exactly `tag`. */
  recv(peer: number, tag: Tag, options: { timeoutMs: number }): Promise<Uint8Array>
  /**
   * Optional: the receiver is done with `bytes`, a message this transport delivered, and
   * has not passed it on to a send. The transport may free its memory now; afterwards
   * `bytes` has length 0. See Note [Releasing received buffers] (detach-array-buffer.ts).
   */
  release?(bytes: Uint8Array): void
  close(): Promise<void>
}

/**
 * Identifies one message of one collective call. Must be unique among calls in flight.
 * See Note [Tags carry the round]: a frame from an earlier membership round is rejected by
 * its round before anything looks at its payload.
 */
export interface Tag {
  /** Membership epoch (rendezvous generation). */
  round: number
  /** Optimizer step. */
  step: number
  /** Sequence number of a collective within a step. */
  op: number
  /** Ring step or chunk index within the op. */
  chunk: number
  /** Transport-sized piece of a chunk. */
  segment: number
}

export function tagsEqual(a: Tag, b: Tag): boolean {
  return a.round === b.round && a.step === b.step && a.op === b.op && a.chunk === b.chunk && a.segment === b.segment
}

export function formatTag(tag: Tag): string {
  return `round ${tag.round} step ${tag.step} op ${tag.op} chunk ${tag.chunk} segment ${tag.segment}`
}
