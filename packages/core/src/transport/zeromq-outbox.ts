/**
 * The send side of one peer: a DEALER and a FIFO of frames waiting for it. zeromq.js allows
 * one pending `send()` per socket (EBUSY otherwise), so sends to one peer are fed to the
 * socket one at a time, in order; callers never see the socket.
 *
 * `send()` on a socket returns at once while ZeroMQ's queue to the peer is below
 * ZMQ_SNDHWM, so in the steady state the pump costs one microtask per message and many
 * messages are in flight on the wire; it only waits when the peer stops reading.
 */
import type { DistError } from '../errors.js'

/** The part of a zeromq.js DEALER this file needs (only zeromq.ts imports 'zeromq'). */
export interface FrameSocket {
  send(frames: [Uint8Array, Uint8Array]): Promise<void>
}

interface Pending {
  frames: [Uint8Array, Uint8Array]
  resolve: () => void
  reject: (error: unknown) => void
}

export class PeerOutbox {
  private readonly queue: Pending[] = []
  private pumping = false
  private failedWith: DistError | undefined

  constructor(
    private readonly socket: FrameSocket,
    private readonly errorFor: (cause: unknown) => DistError,
  ) {}

  /** Resolves when ZeroMQ has taken the frames (they may still be on their way). */
  push(header: Uint8Array, payload: Uint8Array): Promise<void> {
    if (this.failedWith) return Promise.reject(this.failedWith)
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frames: [header, payload], resolve, reject })
      if (!this.pumping) void this.pump()
    })
  }

  /** Rejects every queued send with `error`, and every later one. */
  fail(error: DistError): void {
    this.failedWith ??= error
    for (const pending of this.queue.splice(0)) pending.reject(error)
  }

  private async pump(): Promise<void> {
    this.pumping = true
    try {
      for (let pending = this.queue.shift(); pending; pending = this.queue.shift()) {
        try {
          // Payload views go to ZeroMQ as they are: zeromq.js treats any ArrayBufferView
          // as a buffer and sends more than 128 bytes zero-copy (src/outgoing_msg.cc),
          // keeping a reference until its I/O thread has written them.
          await this.socket.send(pending.frames)
          pending.resolve()
        } catch (cause) {
          pending.reject(this.failedWith ?? this.errorFor(cause))
        }
      }
    } finally {
      this.pumping = false
    }
  }
}
