/**
 * The receiving side of a ring all-reduce: messages from the left peer arrive in one known
 * order, ring step by ring step and segment by segment. `receive()` returns the current one
 * after posting the receive of the next, and checks its size.
 */
import { RingAllReduceError } from '../errors.js'
import type { CollectiveCall } from './collective-call.js'
import type { RingChunks } from './ring-chunks.js'

export class RingReceiver {
  private posted: { g: number; segment: number; bytes: Promise<Uint8Array> } | undefined
  private readonly lastStep: number

  constructor(
    private readonly call: CollectiveCall,
    private readonly chunks: RingChunks,
    private readonly leftPeer: number,
  ) {
    this.lastStep = 2 * call.worldSize - 3
  }

  /** Segment `segment` of ring step `g`, which carries chunk `chunk`. Calls come in ring order. */
  async receive(g: number, chunk: number, segment: number): Promise<Uint8Array> {
    const current = this.posted?.g === g && this.posted.segment === segment ? this.posted.bytes : this.post(g, segment)
    this.posted = undefined
    const next = segment + 1 < this.chunks.segmentCount(chunk) ? { g, segment: segment + 1 } : { g: g + 1, segment: 0 }
    if (next.g <= this.lastStep) this.posted = { ...next, bytes: this.post(next.g, next.segment) }
    this.call.waitingIn(`ring step ${g}`, this.leftPeer, () => `${this.phase(g)}, from rank ${this.leftPeer}`)
    const bytes = await current
    const expected = this.chunks.segmentLengthOf(chunk, segment) * 4
    const count = this.chunks.segmentCount(chunk)
    const what = count > 1 ? `segment ${segment} of ${count} of chunk ${chunk}` : `chunk ${chunk}`
    this.call.checkByteLength(bytes, expected, this.leftPeer, what,
      `Gradient layouts differ between ranks — compare 'layout hash' in the startup log of ranks ${this.leftPeer} and ${this.call.rank}.`,
      RingAllReduceError)
    return bytes
  }

  private post(g: number, segment: number): Promise<Uint8Array> {
    return this.call.receive(this.leftPeer, g, segment, () => this.phase(g))
  }

  /** `reduce-scatter, ring step 2 of 7`, counting from 1 within each phase. */
  private phase(g: number): string {
    const steps = this.call.worldSize - 1
    return g < steps ? `reduce-scatter, ring step ${g + 1} of ${steps}` : `all-gather, ring step ${g - steps + 1} of ${steps}`
  }
}
