/**
 * A worker binds its data socket before the coordinator assigns its rank (its endpoints are
 * part of the join): the rank comes with connect(), and frames that arrive earlier wait.
 */
import { expect, onTestFinished, test } from 'vitest'
import { createZmqTransport, endpointsFromWire, endpointsToWire } from '@ringtrain/core'
import { scaled } from '../helpers/slack.js'

const tag = { round: 0, step: 1, op: 0, collective: 0, ringStep: 0, segment: 0 }

test('a transport bound without a rank gets it at connect(), and holds frames that came first', async () => {
  const early = await createZmqTransport({ rank: 0, worldSize: 2 })
  const late = await createZmqTransport({})
  onTestFinished(async () => {
    await early.close()
    await late.close()
  })
  const wire = [endpointsToWire(early.endpoints), endpointsToWire(late.endpoints)]
  expect(wire[1]!.some((a) => a.startsWith('tcp://127.0.0.1:'))).toBe(true)
  const all = wire.map((addresses, rank) => endpointsFromWire(rank, addresses))
  await early.connect(all)
  await early.send(1, tag, new Uint8Array([7, 8, 9]))
  // The frame reaches `late` before its connect(): wait until `late` holds it. A fixed
  // 100 ms sleep could let the frame arrive after connect() on a busy machine, and the test
  // would pass without testing the held-frames path. (`early` is private: peeked at on purpose.)
  const held = () => (late as unknown as { early?: unknown[] }).early?.length ?? 0
  await expect.poll(held, { timeout: scaled(5_000) }).toBe(1)
  await late.connect(all, { rank: 1, worldSize: 2 })
  expect(late.rank).toBe(1)
  expect([...(await late.recv(0, tag, { timeoutMs: scaled(2000) }))]).toEqual([7, 8, 9])
  await late.send(0, tag, new Uint8Array([1]))
  expect([...(await early.recv(1, tag, { timeoutMs: scaled(2000) }))]).toEqual([1])
})

test('endpoints survive the wire: tcp always, ipc with the host digest that allows it', async () => {
  const t = await createZmqTransport({})
  onTestFinished(() => t.close())
  const back = endpointsFromWire(3, endpointsToWire(t.endpoints))
  expect(back).toEqual({ ...t.endpoints, rank: 3 })
})

test('connect() without a rank on a transport bound without one is a ConfigError', async () => {
  const t = await createZmqTransport({})
  onTestFinished(() => t.close())
  await expect(t.connect([])).rejects.toMatchObject({ code: 'E_CONFIG', message: 'connect() needs { rank, worldSize } when bind() was called without them.' })
})
