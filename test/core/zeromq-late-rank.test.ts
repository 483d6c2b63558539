/**
 * A worker binds its data socket before the coordinator assigns its rank (its endpoints are
 * part of the join): the rank comes with connect(), and frames that arrive earlier wait.
 */
import { expect, onTestFinished, test } from 'vitest'
import { createZmqTransport, endpointsFromWire, endpointsToWire } from '@ringtrain/core'

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
  await new Promise((resolve) => setTimeout(resolve, 100)) // the frame reaches `late` before its connect()
  await late.connect(all, { rank: 1, worldSize: 2 })
  expect(late.rank).toBe(1)
  expect([...(await late.recv(0, tag, { timeoutMs: 2000 }))]).toEqual([7, 8, 9])
  await late.send(0, tag, new Uint8Array([1]))
  expect([...(await early.recv(1, tag, { timeoutMs: 2000 }))]).toEqual([1])
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
