/**
 * The send side of one ZeroMQ socket, for the data plane (a DEALER per peer) and the
 * control plane alike: a FIFO of what waits to be sent, fed to the socket one item at a
 * time, in order. zeromq.js allows one pending `send()` per socket (EBUSY otherwise), so
 * callers never touch the socket.
 *
 * `send()` on a socket returns at once while ZeroMQ's queue to the peer is below
 * ZMQ_SNDHWM, so in the steady state the pump costs one microtask per message and many
 * messages are in flight on the wire; it only waits when the peer stops reading.
 *
 * A failed send rejects its own promise and the queue goes on. A droppable item (a
 * heartbeat, metrics) is dropped, resolved at once, while `maxQueued` items wait;
 * `onDrops(1)` reports the first drop and `onDrops(-n)` the drain after n drops.
 */
export interface SendQueueOptions {
  /** The error a failed send rejects with, from what the socket threw. Default: as thrown. */
  errorFor?: (cause: unknown) => unknown
  /** Items waiting (the one being sent included) beyond which droppable ones are dropped. Default: never. */
  maxQueued?: number
  onDrops?: (dropped: number) => void
}

interface Pending<Item> {
  item: Item
  resolve: () => void
  reject: (error: unknown) => void
}

export class SendQueue<Item> {
  private readonly queue: Pending<Item>[] = []
  private sending = false
  private failedWith: unknown
  private closing = false
  private dropped = 0
  private drainWaiters: (() => void)[] = []

  constructor(
    /** Hands one item to the socket; resolves when ZeroMQ has taken it. */
    private readonly send: (item: Item) => Promise<void>,
    private readonly options: SendQueueOptions = {},
  ) {}

  /** Items queued or being sent. */
  get length(): number {
    return this.queue.length + (this.sending ? 1 : 0)
  }

  /** Resolves when ZeroMQ has taken `item` (it may still be on its way to the peer). */
  push(item: Item, options: { droppable?: boolean } = {}): Promise<void> {
    if (this.failedWith !== undefined) return Promise.reject(this.failedWith)
    if (this.closing) return Promise.resolve()
    if (options.droppable && this.length >= (this.options.maxQueued ?? Number.POSITIVE_INFINITY)) {
      if (++this.dropped === 1) this.options.onDrops?.(1)
      return Promise.resolve()
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, resolve, reject })
      if (!this.sending) void this.pump()
    })
  }

  /** Rejects every queued item with `error`, and every later one. */
  fail(error: unknown): void {
    this.failedWith ??= error
    for (const pending of this.queue.splice(0)) pending.reject(error)
  }

  /** Resolves once nothing is queued or being sent. */
  drained(): Promise<void> {
    if (this.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.drainWaiters.push(resolve))
  }

  /**
   * Stops taking items (later pushes resolve without sending anything) and resolves once
   * what is queued has been sent, or after `lingerMs`: the step before closing the socket.
   */
  async closeAfterFlush(lingerMs: number): Promise<void> {
    this.closing = true
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.drained(), new Promise((resolve) => { timer = setTimeout(resolve, lingerMs) })])
    clearTimeout(timer)
  }

  private async pump(): Promise<void> {
    this.sending = true
    try {
      for (let pending = this.queue.shift(); pending; pending = this.queue.shift()) {
        try {
          await this.send(pending.item)
          pending.resolve()
        } catch (cause) {
          pending.reject(this.failedWith ?? (this.options.errorFor ? this.options.errorFor(cause) : cause))
        }
      }
    } finally {
      this.sending = false
    }
    if (this.dropped > 0) {
      this.options.onDrops?.(-this.dropped)
      this.dropped = 0
    }
    for (const resolve of this.drainWaiters.splice(0)) resolve()
  }
}
