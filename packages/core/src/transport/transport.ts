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
 *
 * Note [Tags carry the round]
 * Every data-plane frame carries the round (membership epoch) it belongs to, as PyTorch's
 * rendezvous keys carry theirs (`torch.rendezvous.{run_id}.{round}`). When a worker is lost
 * and the job moves to a new round, frames of the old round may still be in flight or in
 * socket queues; a receiver compares the round first and fails with E_STALE_ROUND before
 * anything looks at the payload, so no byte of an abandoned step is ever added into a new
 * one. The rest of the tag (step, op, collective, ring step, segment) must then match
 * exactly: within a round a mismatch means the ranks run different schedules
 * (E_TAG_MISMATCH), and ProcessGroup hands out op ids so that honest ranks never do.
 */
export interface Tag {
  /** Membership epoch (rendezvous generation). */
  round: number
  /** The optimizer step being computed (0 before training starts). */
  step: number
  /** Sequence number of the collective call within the round, in call order (see ProcessGroup). */
  op: number
  /**
   * Which collective the op is (`CollectiveKind`; 0 for messages outside any collective),
   * so two ranks whose schedules differ fail with E_TAG_MISMATCH instead of mixing bytes.
   */
  collective: number
  /** Position within the collective's exchange: the ring step, or the barrier's round. */
  ringStep: number
  /** Transport-sized piece of what one ring step carries. */
  segment: number
}

/** The `collective` of a Tag, as it travels on the wire. Never renumber one. */
export const CollectiveKind = {
  none: 0,
  allReduce: 1,
  broadcast: 2,
  allGather: 3,
  barrier: 4,
} as const
export type CollectiveName = Exclude<keyof typeof CollectiveKind, 'none'>

export function tagsEqual(a: Tag, b: Tag): boolean {
  return a.round === b.round && a.step === b.step && a.op === b.op && a.collective === b.collective && a.ringStep === b.ringStep && a.segment === b.segment
}

/** `round 0 step 3 op 5 (allReduce) ring step 1 segment 0`. */
export function formatTag(tag: Tag): string {
  const name = Object.entries(CollectiveKind).find(([, code]) => code === tag.collective)?.[0]
  const collective = tag.collective === 0 ? '' : ` (${name ?? `collective ${tag.collective}`})`
  return `round ${tag.round} step ${tag.step} op ${tag.op}${collective} ring step ${tag.ringStep} segment ${tag.segment}`
}
