/**
 * One host of the raw TCP check of `bench allreduce --testbed-hosts` (tcp-ring.ts), run on a
 * test-bed host with an IPC channel to the parent. Plain node:net, no ZeroMQ, no encryption:
 * what the shaped links (and this machine's CPUs) deliver, to hold the ring against.
 *
 *  1. listens on RINGTRAIN_TCP_LISTEN (this host's address), port 5299; → `{ type: 'listening' }`;
 *  2. ← `{ type: 'go', to, ms }`: connects to `to` (or sends nothing when absent) and writes
 *     1 MiB buffers for `ms` milliseconds, then ends the connection;
 *  3. → `{ type: 'received', bytes, ms }`: what arrived from the peer that connected to us,
 *     counted from SETTLE_MS after its first byte to its end, so that neither TCP's start nor
 *     the burst a full tbf bucket lets through counts (a host no peer sends to never answers);
 *  4. exits when the parent disconnects.
 */
import { createServer, connect } from 'node:net'

export type TcpParentMessage = { type: 'go'; to?: string; ms: number }
export type TcpHostMessage = { type: 'listening' } | { type: 'received'; bytes: number; ms: number } | { type: 'failed'; message: string }

export const TCP_CHECK_PORT = 5299
const send = (message: TcpHostMessage) => process.send!(message)
const fail = (error: Error) => { send({ type: 'failed', message: `${process.env['RINGTRAIN_TCP_LISTEN']}: ${error.message}` }); process.exit(1) }

const SETTLE_MS = 500
const server = createServer((socket) => {
  let bytes = 0
  let first: number | undefined
  let mark: { at: number; bytes: number } | undefined
  socket.on('data', (chunk: Buffer) => {
    const now = performance.now()
    first ??= now
    if (!mark && now - first >= SETTLE_MS) mark = { at: now, bytes }
    bytes += chunk.length
  })
  socket.on('end', () => {
    const from = mark ?? { at: first ?? performance.now(), bytes: 0 }
    send({ type: 'received', bytes: bytes - from.bytes, ms: performance.now() - from.at })
    server.close()
  })
  socket.on('error', fail)
})
server.on('error', fail)
server.listen(TCP_CHECK_PORT, process.env['RINGTRAIN_TCP_LISTEN'], () => send({ type: 'listening' }))

process.on('message', (message: TcpParentMessage) => {
  if (message.type !== 'go') return
  if (message.to === undefined) return
  const buffer = Buffer.alloc(1 << 20, 1)
  const client = connect(TCP_CHECK_PORT, message.to, () => {
    const end = performance.now() + message.ms
    const pump = (): void => {
      while (performance.now() < end) if (!client.write(buffer)) return void client.once('drain', pump)
      client.end()
    }
    pump()
  })
  client.on('error', fail)
})
process.on('disconnect', () => process.exit(0))
