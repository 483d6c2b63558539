/**
 * InProcessTransport: ranks in one process exchanging references through a shared hub.
 * It is the reference for Note [Transport semantics] and the fast transport for unit tests.
 * Like ZeroMQ's zero-copy send it passes the sender's bytes by reference, so a collective
 * that modifies a buffer it has sent, before the peer has it, fails here too.
 */
import { DistError, PeerLostError } from '../errors.js'
import { PeerInbox } from './peer-inbox.js'
import type { Tag, Transport } from './transport.js'

export class InProcessHub {
  readonly inboxes: PeerInbox[]
  readonly closed: boolean[]

  constructor(readonly worldSize: number) {
    this.inboxes = Array.from({ length: worldSize }, (_, rank) => new PeerInbox(rank, worldSize))
    this.closed = new Array<boolean>(worldSize).fill(false)
  }

  /** One transport per rank, all joined to this hub. */
  transports(): InProcessTransport[] {
    return this.inboxes.map((_, rank) => new InProcessTransport(this, rank))
  }
}

export class InProcessTransport implements Transport {
  readonly worldSize: number

  constructor(
    private readonly hub: InProcessHub,
    readonly rank: number,
  ) {
    this.worldSize = hub.worldSize
  }

  async send(peer: number, tag: Tag, bytes: Uint8Array): Promise<void> {
    this.checkPeer(peer)
    if (this.hub.closed[this.rank]) throw this.closedError()
    if (this.hub.closed[peer]) {
      throw new PeerLostError('E_PEER_LOST', `rank ${this.rank} cannot send to rank ${peer}: its transport is closed.`, { rank: this.rank, peer })
    }
    // Deliver on a later microtask, as a socket would: never inside the caller's stack.
    queueMicrotask(() => this.hub.inboxes[peer]!.deliver(this.rank, { ...tag }, bytes))
  }

  recv(peer: number, tag: Tag, options: { timeoutMs: number }): Promise<Uint8Array> {
    this.checkPeer(peer)
    return this.hub.inboxes[this.rank]!.take(peer, tag, options.timeoutMs)
  }

  async close(): Promise<void> {
    if (this.hub.closed[this.rank]) return
    this.hub.closed[this.rank] = true
    this.hub.inboxes[this.rank]!.close(this.closedError())
    for (let peer = 0; peer < this.worldSize; peer++) {
      if (peer === this.rank || this.hub.closed[peer]) continue
      this.hub.inboxes[peer]!.failPeer(
        this.rank,
        new PeerLostError('E_PEER_LOST', `rank ${peer} lost rank ${this.rank}: its transport closed.`, { rank: peer, peer: this.rank }),
      )
    }
  }

  private checkPeer(peer: number): void {
    if (!Number.isInteger(peer) || peer < 0 || peer >= this.worldSize || peer === this.rank) {
      throw new DistError('E_INTERNAL', `rank ${this.rank} addressed peer ${peer}; expected an integer in [0, ${this.worldSize}) other than itself.`, { rank: this.rank, peer })
    }
  }

  private closedError(): DistError {
    return new DistError('E_CLOSED', `rank ${this.rank}'s transport is closed.`, { rank: this.rank })
  }
}
