import { createRequire } from 'node:module'
import { describe, expect, onTestFinished, test } from 'vitest'
import { createZmqTransport, encode, PROTOCOL_VERSION, type BoundZmqTransport, type Tag, type ZmqEndpoints, type ZmqTransportOptions } from '@ringtrain/core'
import { encodeFrameHeader } from '@ringtrain/core/unstable-internals-do-not-import'
import { createZmqTransports } from '../helpers/zeromq-world.js'
import { scaled } from '../helpers/slack.js'

// The timeout of a receive whose frame is on its way: only bounds a hang, scaled by the load.
const arrives = { timeoutMs: scaled(2000) }

const tag = (over: Partial<Tag> = {}): Tag => ({ round: 0, step: 0, op: 0, collective: 0, ringStep: 0, segment: 0, ...over })

async function world(worldSize: number, options: Partial<ZmqTransportOptions> = {}): Promise<BoundZmqTransport[]> {
  const transports = await createZmqTransports(worldSize, options)
  onTestFinished(() => Promise.all(transports.map((t) => t.close())).then(() => undefined))
  return transports
}

/** One rank alone (its peers are not bound), with the warnings it logs. */
async function lonely(rank: number, worldSize: number, options: Partial<ZmqTransportOptions> = {}) {
  const warnings: string[] = []
  const t = await createZmqTransport({ rank, worldSize, ipc: false, warn: (m) => warnings.push(m), ...options })
  onTestFinished(() => t.close())
  return { t, warnings }
}

interface RawDealer { connect(address: string): void; send(frames: (Uint8Array | string)[]): Promise<void>; close(): void }
/** A DEALER that claims `routingId`, to send what an honest transport never would. */
function rawDealer(routingId: string, address: string): RawDealer {
  // zeromq is a dependency of @ringtrain/core, not of the tests: resolve it from there.
  const zmq = createRequire(createRequire(import.meta.url).resolve('@ringtrain/core'))('zeromq') as { Dealer: new (o: object) => RawDealer }
  const dealer = new zmq.Dealer({ routingId, linger: 0 })
  dealer.connect(address)
  onTestFinished(() => dealer.close())
  return dealer
}

const bytes = (...values: number[]) => new Uint8Array(values)

describe('ZmqTransport semantics (Note [Transport semantics])', () => {
  test('delivers in order per peer, with several peers sending at once', async () => {
    const [a, b, c] = await world(3)
    const sends: Promise<void>[] = []
    for (let i = 0; i < 50; i++) {
      sends.push(a!.send(1, tag({ segment: i }), bytes(0, i)), c!.send(1, tag({ segment: i }), bytes(2, i)))
    }
    for (let i = 0; i < 50; i++) {
      expect(await b!.recv(2, tag({ segment: i }), arrives)).toEqual(bytes(2, i))
      expect(await b!.recv(0, tag({ segment: i }), arrives)).toEqual(bytes(0, i))
    }
    await Promise.all(sends)
  })

  test('rejects a frame of another round with E_STALE_ROUND', async () => {
    const [a, b] = await world(2)
    await a!.send(1, tag({ round: 0 }), bytes(9))
    const error = await b!.recv(0, tag({ round: 1 }), arrives).catch((e) => e)
    expect(error.code).toBe('E_STALE_ROUND')
    expect(error.message).toBe('rank 1 got a frame of round 0 from rank 0 while in round 1; dropped it (round 0 step 0 op 0 ring step 0 segment 0).')
  })

  test('rejects a frame with a foreign tag with E_TAG_MISMATCH, then takes the next one', async () => {
    const [a, b] = await world(2)
    await a!.send(1, tag({ op: 3 }), bytes(9))
    await a!.send(1, tag({ op: 2 }), bytes(8))
    const error = await b!.recv(0, tag({ op: 2 }), arrives).catch((e) => e)
    expect(error.code).toBe('E_TAG_MISMATCH')
    expect(error.message).toBe('rank 1 expected a frame with round 0 step 0 op 2 ring step 0 segment 0 from rank 0 but got round 0 step 0 op 3 ring step 0 segment 0; dropped it. Ranks are running different collectives: check that every rank calls the same ops in the same order.')
    expect(await b!.recv(0, tag({ op: 2 }), arrives)).toEqual(bytes(8))
  })

  test('times out naming rank, peer and tag', async () => {
    const [, b] = await world(2)
    const error = await b!.recv(0, tag({ step: 4 }), { timeoutMs: 50 }).catch((e) => e)
    expect(error.name).toBe('CollectiveTimeoutError')
    expect(error.code).toBe('E_TIMEOUT')
    expect(error.message).toBe('rank 1 waited 50 ms for a message from rank 0 (round 0 step 4 op 0 ring step 0 segment 0); nothing arrived.')
  })

  test('close() rejects pending and later calls with E_CLOSED', async () => {
    const [a, b] = await world(2)
    const pending = b!.recv(0, tag(), { timeoutMs: 5000 })
    await b!.close()
    await expect(pending).rejects.toMatchObject({ code: 'E_CLOSED', message: "rank 1's transport is closed." })
    await expect(b!.send(0, tag(), bytes(1))).rejects.toMatchObject({ code: 'E_CLOSED' })
    await a!.close()
    await expect(a!.recv(1, tag(), { timeoutMs: 10 })).rejects.toMatchObject({ code: 'E_CLOSED', message: "rank 0's transport is closed." })
  })

  test('connects over ipc to peers on the same host, and over tcp to the others', async () => {
    const { t: b } = await lonely(1, 3, { ipc: true })
    const nowhere = (rank: number): ZmqEndpoints => ({ rank, hostId: 'nowhere', tcp: 'tcp://127.0.0.1:9' })
    // Same hostId: only b's ipc endpoint works, so the frame proves ipc was chosen.
    const sameHost = await createZmqTransport({ rank: 0, worldSize: 3 })
    onTestFinished(() => sameHost.close())
    await sameHost.connect([sameHost.endpoints, { ...b.endpoints, tcp: 'tcp://127.0.0.1:9' }, nowhere(2)])
    await sameHost.send(1, tag({ step: 1 }), bytes(1))
    expect(await b.recv(0, tag({ step: 1 }), arrives)).toEqual(bytes(1))
    // Another hostId: only b's tcp endpoint works.
    const otherHost = await createZmqTransport({ rank: 2, worldSize: 3, hostId: 'elsewhere' })
    onTestFinished(() => otherHost.close())
    await otherHost.connect([nowhere(0), { ...b.endpoints, ipc: 'ipc:///nonexistent/ringtrain.sock' }, otherHost.endpoints])
    await otherHost.send(1, tag({ step: 2 }), bytes(2))
    expect(await b.recv(2, tag({ step: 2 }), arrives)).toEqual(bytes(2))
  })

  test('carries a 16 MiB + 3 byte payload intact, over ipc and over tcp', async () => {
    const payload = new Uint8Array(16 * 1024 * 1024 + 3)
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 2654435761) >>> 24
    for (const ipc of [true, false]) {
      const [a, b] = await world(2, { ipc })
      const sent = a!.send(1, tag({ step: 7 }), payload.subarray(1))
      const got = await b!.recv(0, tag({ step: 7 }), { timeoutMs: scaled(10_000) })
      await sent
      expect(got.byteLength).toBe(payload.byteLength - 1)
      expect(Buffer.compare(got, payload.subarray(1))).toBe(0) // every byte, not a sample
    }
  })
})

describe('ZmqTransport validates every frame at the edge', () => {
  const sendRaw = async (frames: (Uint8Array | string)[], options: Partial<ZmqTransportOptions> = {}) => {
    const { t, warnings } = await lonely(1, 3, options)
    const pending = t.recv(0, tag(), arrives).catch((e) => e)
    await rawDealer('0', t.endpoints.tcp).send(frames)
    return { error: await pending, t, warnings }
  }

  test('a header that is not msgpack: E_BAD_FRAME', async () => {
    const { error } = await sendRaw(['\xc1garbage', bytes(1, 2)])
    expect(error.name).toBe('FrameError')
    expect(error.code).toBe('E_BAD_FRAME')
    expect(error.message).toBe('rank 1 got a bad frame header from rank 0: expected a msgpack [version, from, round, step, op, collective, ringStep, segment, byteLength] of non-negative integers, got 9 bytes 0xc38167617262616765. Dropped it.')
  })

  test('a header of the wrong shape: E_BAD_FRAME', async () => {
    const { error } = await sendRaw([encode({ round: 0 }), bytes(1)])
    expect(error.code).toBe('E_BAD_FRAME')
    expect(error.message).toBe('rank 1 got a bad frame header from rank 0: expected a msgpack [version, from, round, step, op, collective, ringStep, segment, byteLength] of non-negative integers, got 10 bytes 0xde0001a5726f756e6400. Dropped it.')
  })

  test('a foreign protocol version: E_PROTOCOL_VERSION', async () => {
    const { error } = await sendRaw([encode([99, 0, 0, 0, 0, 0, 0, 0, 1]), bytes(1)])
    expect(error.code).toBe('E_PROTOCOL_VERSION')
    expect(error.message).toBe(`rank 1 got a frame of protocol version 99 from rank 0; expected version ${PROTOCOL_VERSION}. Run the same ringtrain version on every worker.`)
  })

  test('a header whose `from` is not the routing id: E_BAD_FRAME', async () => {
    const { error } = await sendRaw([encodeFrameHeader(2, tag(), 1), bytes(1)])
    expect(error.code).toBe('E_BAD_FRAME')
    expect(error.message).toBe('rank 1 got a frame from rank 0 whose header says it is from rank 2 (round 0 step 0 op 0 ring step 0 segment 0); expected from 0, got 2. Dropped it.')
  })

  test('a payload whose length is not the header byteLength: E_BAD_FRAME', async () => {
    const { error } = await sendRaw([encodeFrameHeader(0, tag(), 8), bytes(1, 2, 3)])
    expect(error.code).toBe('E_BAD_FRAME')
    expect(error.message).toBe('rank 1 got a payload of 3 bytes from rank 0 whose header announced 8 bytes (round 0 step 0 op 0 ring step 0 segment 0); expected 8, got 3. Dropped it.')
  })

  test('a message of 3 frames: E_BAD_FRAME', async () => {
    const { error } = await sendRaw([encodeFrameHeader(0, tag(), 1), bytes(1), bytes(2)])
    expect(error.code).toBe('E_BAD_FRAME')
    expect(error.message).toBe('rank 1 got a message of 3 frames from rank 0; expected 2 frames [header, payload]. Dropped it.')
  })
})

describe('ZmqTransport refuses what it cannot trust', () => {
  test('drops a message from an unknown routing id with a logged reason', async () => {
    const { t, warnings } = await lonely(1, 2)
    await rawDealer('7', t.endpoints.tcp).send([encodeFrameHeader(7, tag(), 1), bytes(1)])
    await expect.poll(() => warnings).toEqual(['[rank 1] dropped a message of 2 frames from unknown routing id "7"; expected the rank of a peer in [0, 2) other than 1.'])
  })

  test('refuses to send a payload over maxMessageBytes (default 16 MiB + 4 KiB): E_FRAME_TOO_LARGE', async () => {
    const [a] = await world(2)
    const error = await a!.send(1, tag(), new Uint8Array(70_000_000)).catch((e) => e)
    expect(error.name).toBe('FrameError')
    expect(error.code).toBe('E_FRAME_TOO_LARGE')
    expect(error.message).toBe('rank 0 refused to send 70000000 bytes to rank 1: over maxMessageBytes (16781312), which the receiving socket would refuse. Send it in smaller segments.')
  })

  // See Note [Oversized frames] in zeromq.ts: ZMQ_MAXMSGSIZE makes ZeroMQ drop the
  // connection that carried the frame. The receiver survives; the frame never arrives.
  test('an oversized frame from a raw socket is refused by the receiving socket; the receiver survives', async () => {
    const { t } = await lonely(1, 3, { maxMessageBytes: 4096 })
    const honest = await createZmqTransport({ rank: 2, worldSize: 3, ipc: false })
    onTestFinished(() => honest.close())
    const nowhere: ZmqEndpoints = { rank: 0, hostId: 'nowhere', tcp: 'tcp://127.0.0.1:9' }
    await honest.connect([nowhere, t.endpoints, honest.endpoints])

    // Long enough for the liar's frame to reach the socket and be refused on a busy machine.
    const timeoutMs = scaled(500)
    const pending = t.recv(0, tag({ step: 1 }), { timeoutMs }).catch((e) => e)
    const liar = rawDealer('0', t.endpoints.tcp)
    await liar.send([encodeFrameHeader(0, tag({ step: 1 }), 5000), new Uint8Array(5000)])
    const error = await pending
    expect(error.code).toBe('E_TIMEOUT')
    expect(error.message).toBe(`rank 1 waited ${timeoutMs} ms for a message from rank 0 (round 0 step 1 op 0 ring step 0 segment 0); nothing arrived. Meanwhile rank 1's data socket lost a connection: a peer exited, or sent a frame over maxMessageBytes (4096), which ZeroMQ refuses by disconnecting the sender.`)

    // Honest peers are unaffected, and the liar's DEALER reconnects: its next frame arrives.
    await honest.send(1, tag({ step: 2 }), bytes(2))
    expect(await t.recv(2, tag({ step: 2 }), arrives)).toEqual(bytes(2))
    await liar.send([encodeFrameHeader(0, tag({ step: 3 }), 1), bytes(3)])
    expect(await t.recv(0, tag({ step: 3 }), arrives)).toEqual(bytes(3))
  })

  test('binds its ipc socket file in a private directory (0700) and leaves nothing behind', async () => {
    const { existsSync, statSync } = await import('node:fs')
    const path_ = await import('node:path')
    const dirname = (p: string) => path_.dirname(p)
    const t = await createZmqTransport({ rank: 0, worldSize: 1 })
    const path = t.endpoints.ipc!.slice('ipc://'.length)
    expect(path).toMatch(/\/ringtrain-[0-9a-f]{16}-[^/]+\/data\.sock$/)
    expect(statSync(dirname(path)).mode & 0o777).toBe(0o700)
    expect(statSync(path).isSocket()).toBe(true)
    await t.close()
    expect(existsSync(dirname(path))).toBe(false)
  })

})
