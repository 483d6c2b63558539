/**
 * Factory for the ZeroMQ transport. The native addon is loaded by a lazy `import()` on the
 * first call, so processes that only use InProcessTransport never load it (as PyTorch's
 * rendezvous registry does for etcd).
 */
import type { BoundZmqTransport, ZmqTransportOptions } from './zeromq-options.js'

/**
 * Binds a ZeroMQ transport for one rank (phase 1 of 2; see zeromq.ts): report
 * `transport.endpoints` to the other ranks, then `await transport.connect(allEndpoints)`.
 * Not a synchronization point. Rejects with E_CONFIG for bad options or a port in use.
 */
export async function createZmqTransport(options: ZmqTransportOptions): Promise<BoundZmqTransport> {
  const { ZmqTransport } = await import('./zeromq.js')
  return ZmqTransport.bind(options)
}
