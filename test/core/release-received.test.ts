/**
 * Note [Releasing received buffers] (detach-array-buffer.ts): collectives hand consumed, unforwarded messages back
 * to the transport, and the ZeroMQ transport frees them at once instead of at the next GC.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterEach, describe, expect, it } from 'vitest'
import { ringAllReduce, broadcast, allGather, type BoundZmqTransport, type Tag, type Transport } from '@ringtrain/core'
import { canDetachArrayBuffers, detachArrayBuffer } from '@ringtrain/core/unstable-internals-do-not-import'
import { createZmqTransports } from '../helpers/zeromq-world.js'

const MiB = 1024 * 1024
// @types/node does not declare WebAssembly.
const Wasm = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } } }).WebAssembly
const tag = (segment: number): Tag => ({ round: 0, step: 0, op: 0, collective: 0, ringStep: 0, segment })

describe('detachArrayBuffer', () => {
  it('is available on this Node, and detaching empties every view', () => {
    expect(canDetachArrayBuffers).toBe(true)
    const buffer = new ArrayBuffer(64)
    const view = new Float32Array(buffer, 16, 4)
    expect(detachArrayBuffer(buffer)).toBe(true)
    expect(buffer.byteLength).toBe(0)
    expect(view.length).toBe(0)
    expect(detachArrayBuffer(buffer)).toBe(false)
  })

  it('leaves shared and WebAssembly memory alone', () => {
    const shared = new SharedArrayBuffer(16)
    expect(detachArrayBuffer(shared)).toBe(false)
    expect(shared.byteLength).toBe(16)
    const memory = new Wasm.Memory({ initial: 1 })
    expect(detachArrayBuffer(memory.buffer)).toBe(false)
    expect(memory.buffer.byteLength).toBe(65536)
  })
})

describe('ZmqTransport.release', () => {
  let transports: BoundZmqTransport[] = []
  afterEach(async () => {
    await Promise.all(transports.map((t) => t.close()))
    transports = []
  })

  it('frees a delivered payload and ignores bytes it did not deliver', async () => {
    transports = await createZmqTransports(2)
    const [a, b] = transports as [BoundZmqTransport, BoundZmqTransport]
    const sent = new Uint8Array(MiB).map((_, i) => i % 251)
    await a.send(1, tag(0), sent)
    const received = await b.recv(0, tag(0), { timeoutMs: 5000 })
    expect(Buffer.compare(received, sent)).toBe(0)

    const foreign = new Uint8Array(MiB).fill(3)
    b.release(foreign)
    expect(foreign.byteLength).toBe(MiB)
    b.release(received)
    expect(received.byteLength).toBe(0)
    b.release(received) // a second release is a no-op
    expect(sent[300]).toBe(300 % 251) // the sender's bytes are its own
  })

  it('gives the memory of released payloads back at once, not at the next GC', async () => {
    transports = await createZmqTransports(2)
    const [a, b] = transports as [BoundZmqTransport, BoundZmqTransport]
    const count = 16
    const payload = new Uint8Array(MiB).fill(1)
    // Settle what earlier tests left, so that no unrelated free lands inside the measurement.
    for (let i = 0; i < 2; i++) {
      collectGarbage()
      await turn()
    }
    const before = process.memoryUsage().external
    for (let segment = 0; segment < count; segment++) await a.send(1, tag(segment), payload)
    const received = await Promise.all(Array.from({ length: count }, (_, segment) => b.recv(0, tag(segment), { timeoutMs: 5000 })))
    const held = process.memoryUsage().external - before
    // zeromq.js reports what it delivered: the 16 payloads, less whatever else this process
    // freed meanwhile (512 bytes once, on a busy machine), so at least 15 MiB. The assertion
    // under test, below, keeps its own 2 MiB margin.
    expect(held).toBeGreaterThanOrEqual((count - 1) * MiB)
    for (const bytes of received) b.release(bytes)
    await turn() // Node runs zeromq.js's release callbacks on the next turn
    expect(process.memoryUsage().external - before).toBeLessThan(held - (count - 2) * MiB)
  })
})

/** Records every message a collective receives and whether it was forwarded or released. */
class Recording implements Transport {
  readonly received: Uint8Array[] = []
  readonly forwarded = new Set<Uint8Array>()
  readonly released = new Set<Uint8Array>()
  constructor(private readonly inner: BoundZmqTransport) {}
  get rank() { return this.inner.rank }
  get worldSize() { return this.inner.worldSize }
  send(peer: number, t: Tag, bytes: Uint8Array) {
    if (this.received.includes(bytes)) this.forwarded.add(bytes)
    return this.inner.send(peer, t, bytes)
  }
  async recv(peer: number, t: Tag, options: { timeoutMs: number }) {
    const bytes = await this.inner.recv(peer, t, options)
    this.received.push(bytes)
    return bytes
  }
  release(bytes: Uint8Array) {
    this.released.add(bytes)
    this.inner.release(bytes)
  }
  close() { return this.inner.close() }
}

describe.each([2, 3, 4])('collectives over ZeroMQ with %i ranks', (worldSize) => {
  let transports: BoundZmqTransport[] = []
  afterEach(async () => {
    await Promise.all(transports.map((t) => t.close()))
    transports = []
  })

  /** Every message is either forwarded (kept intact) or released (detached), never both. */
  function expectReleasedUnlessForwarded(recording: Recording[]): void {
    for (const r of recording) {
      expect(r.received.length).toBeGreaterThan(0)
      for (const bytes of r.received) {
        const forwarded = r.forwarded.has(bytes)
        expect({ rank: r.rank, forwarded, released: r.released.has(bytes) }).toEqual({ rank: r.rank, forwarded, released: !forwarded })
        if (!forwarded) expect(bytes.byteLength).toBe(0)
      }
    }
  }

  it('ring all-reduce releases what it reads and keeps what it forwards; results are exact', async () => {
    transports = await createZmqTransports(worldSize)
    const recording = transports.map((t) => new Recording(t))
    const length = 300_001
    const data = recording.map((_, r) => new Float32Array(length).fill(r + 1))
    await Promise.all(recording.map((t, r) => ringAllReduce(t, data[r]!, { step: 0, op: 0, round: 0, timeoutMs: 10_000, segmentBytes: 64 * 1024 })))
    const expected = (worldSize * (worldSize + 1)) / 2
    for (const d of data) expect(d.every((x) => x === expected)).toBe(true)
    expectReleasedUnlessForwarded(recording)
  })

  it('broadcast and all-gather release the messages they do not forward', async () => {
    transports = await createZmqTransports(worldSize)
    const recording = transports.map((t) => new Recording(t))
    const data = recording.map((_, r) => new Float32Array(1000).fill(r === 1 ? 7 : 0))
    await Promise.all(recording.map((t, r) => broadcast(t, data[r]!, { step: 0, op: 0, round: 0, timeoutMs: 10_000, root: 1 })))
    for (const d of data) expect(d.every((x) => x === 7)).toBe(true)
    const gathered = await Promise.all(recording.map((t, r) => allGather(t, new Float32Array([r, r]), { step: 0, op: 1, round: 0, timeoutMs: 10_000 })))
    for (const g of gathered) expect(g.map((block) => Array.from(block))).toEqual(recording.map((_, r) => [r, r]))
    expectReleasedUnlessForwarded(recording)
  })
})

/** A full GC, without starting vitest with --expose-gc. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc')
  ;(runInNewContext('gc') as () => void)()
}

function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
