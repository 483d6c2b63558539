/**
 * Importing this file registers the 'zeromq' world kind: N ZeroMQ transports in this
 * process, bound on 127.0.0.1 port 0 (and ipc), then connected to each other, so the same
 * test body runs over real sockets. Kept out of world.ts so in-process tests never load
 * the native addon.
 */
import { createZmqTransport, type BoundZmqTransport, type ZmqTransportOptions } from '@ringtrain/core'
import { registerWorldKind } from './world.js'

/** Binds `worldSize` transports and connects them all; closes what it bound on failure. */
export async function createZmqTransports(worldSize: number, options: Partial<ZmqTransportOptions> = {}): Promise<BoundZmqTransport[]> {
  const transports: BoundZmqTransport[] = []
  try {
    for (let rank = 0; rank < worldSize; rank++) {
      transports.push(await createZmqTransport({ host: '127.0.0.1', port: 0, ...options, rank, worldSize }))
    }
    const endpoints = transports.map((t) => t.endpoints)
    await Promise.all(transports.map((t) => t.connect(endpoints)))
    return transports
  } catch (error) {
    await Promise.all(transports.map((t) => t.close()))
    throw error
  }
}

registerWorldKind('zeromq', (worldSize) => createZmqTransports(worldSize))
