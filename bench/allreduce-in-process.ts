/**
 * The ring all-reduce with both ranks in this process, over two real ZeroMQ transports:
 * one event loop interleaves them, so the OS scheduler adds little noise, which makes small
 * differences between two checkouts visible. 1 MiB, 300 timed calls after 50 warm-up.
 *
 *   node --import tsx bench/allreduce-in-process.ts
 *
 * Prints the median ms per call.
 */
import { createZmqTransport, ringAllReduce } from '@ringtrain/core'

const transports = await Promise.all([0, 1].map((rank) => createZmqTransport({ rank, worldSize: 2, host: '127.0.0.1', port: 0 })))
await Promise.all(transports.map((t) => t.connect(transports.map((u) => u.endpoints))))
const data = transports.map((t) => new Float32Array(262_144).fill(t.rank + 1))
const timesMs: number[] = []
for (let i = 0; i < 350; i++) {
  const started = performance.now()
  await Promise.all(transports.map((t, rank) => ringAllReduce(t, data[rank]!, { step: i, op: 0, timeoutMs: 10_000, average: true })))
  if (i >= 50) timesMs.push(performance.now() - started)
}
console.log(timesMs.sort((a, b) => a - b)[timesMs.length >> 1]!.toFixed(3))
await Promise.all(transports.map((t) => t.close()))
