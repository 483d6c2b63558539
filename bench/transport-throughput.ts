/**
 * Throughput of the ZeroMQ transport between two OS processes on one host: 16 MiB sent as
 * segments of 256 KiB, 1 MiB and 4 MiB, one way and in both directions at once, over
 * tcp:// (loopback) and ipc://.
 *
 *   node --import tsx bench/transport-throughput.ts [--iterations 25] [--options '{"ioThreads":2}'] [--only 'ipc both'] [--keep]
 *
 * Received segments are released at once (Note [Releasing received buffers]); --keep
 * leaves them to the garbage collector, as before that Note.
 *
 * GB/s = 1e9 bytes/s; "both ways" is per direction (each rank sends and receives 16 MiB).
 * CPU is rank 0's process (all threads) per iteration: unlike GB/s it hardly depends on load.
 *
 * Measured 2026-11 on the 2-core dev VM while other jobs ran (load average 3.6-4.9, so wall
 * figures move ±30% between runs; CPU figures are steadier), 25 iterations, medians:
 *                        tcp GB/s  (CPU user+sys ms)   ipc GB/s  (CPU user+sys ms)
 *   one way    256 KiB   1.79      (0.8 + 5.0)         1.66      (0.0 + 4.4)
 *   one way      1 MiB   2.45      (0.3 + 3.8)         2.85      (0.2 + 2.7)
 *   one way      4 MiB   1.98      (0.0 + 4.6)         2.25      (0.5 + 2.2)
 *   both ways  256 KiB   1.10      (7.9 + 10.0)        0.97      (7.9 + 6.8)
 *   both ways    1 MiB   1.28      (6.6 + 6.6)         1.10-1.67 (7.2 + 4.5)
 *   both ways    4 MiB   1.34      (5.8 + 8.0)         0.91-1.57 (5.9 + 4.8)
 * Without Note [Receive buffers and malloc] (GLIBC_TUNABLES=), both ways: system CPU
 * doubles (ipc 1 MiB: 7.4 + 8.9 ms; 4 MiB: 6.3 + 9.4 ms) and GB/s drops up to 2x.
 * ioThreads 1 instead of 2: ipc both ways 0.63 / 0.89 / 1.17 GB/s in the same session.
 * Ceilings on this VM (python, raw sockets, recv_into a reused buffer, both ways):
 * unix socket 2.2-2.8 GB/s, loopback TCP 1.3-1.6 GB/s. Hence ipc for same-host peers.
 * Those figures left received buffers to the GC (now --keep). Where that time went (perf,
 * ipc both ways 1 MiB): kernel copies 32%, V8 major GC 30%, from zeromq.js reporting every
 * received buffer as external memory (src/incoming_msg.cc). Releasing them at once (the
 * default, Note [Releasing received buffers]), 2026-11-23 03:22 on the idle VM, ipc both
 * ways: 2.16 / 3.30 / 4.19 GB/s for 256 KiB / 1 MiB / 4 MiB segments, against
 * 0.86 / 1.02 / 1.04 with --keep in the same session.
 */
import { fork, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createZmqTransport, type BoundZmqTransport, type Tag, type ZmqEndpoints, type ZmqTransportOptions } from '@ringtrain/core'

const TOTAL_BYTES = 16 * 1024 * 1024
const SEGMENT_BYTES = [256 * 1024, 1024 * 1024, 4 * 1024 * 1024]
const TIMEOUT_MS = 10_000

type Mode = 'one way' | 'both ways'
interface Case { endpoint: 'tcp' | 'ipc'; mode: Mode; segmentBytes: number }
type ParentMessage = { type: 'endpoints'; all: ZmqEndpoints[] } | { type: 'case'; index: number } | { type: 'stop' }

// Both ranks run with Note [Receive buffers and malloc] (zeromq-options.ts) applied, as
// launched workers do: re-run this script with it unless it is set (GLIBC_TUNABLES= to opt out).
if (process.env.GLIBC_TUNABLES === undefined) {
  const GLIBC_TUNABLES = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456'
  const result = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, GLIBC_TUNABLES } })
  process.exit(result.status ?? 1)
}
const args = parseArgs(process.argv.slice(2))
const cases: Case[] = (['tcp', 'ipc'] as const).flatMap((endpoint) =>
  (['one way', 'both ways'] as const).flatMap((mode) => SEGMENT_BYTES.map((segmentBytes) => ({ endpoint, mode, segmentBytes }))))
  .filter((c) => `${c.endpoint} ${c.mode} ${c.segmentBytes / 1024}KiB`.includes(args.only))
const payload = new Uint8Array(TOTAL_BYTES).fill(7)

if (process.env.RINGTRAIN_BENCH_RANK === '1') await child()
else await parent()

async function parent(): Promise<void> {
  const worker = fork(fileURLToPath(import.meta.url), process.argv.slice(2), {
    env: { ...process.env, RINGTRAIN_BENCH_RANK: '1' },
    execArgv: process.execArgv,
  })
  const fromChild = messages(worker)
  try {
    console.log(`options ${JSON.stringify(args.options)}, GLIBC_TUNABLES=${JSON.stringify(process.env.GLIBC_TUNABLES)}, ${args.iterations} iterations per case, median GB/s`)
    for (const endpoint of ['tcp', 'ipc'] as const) {
      if (!cases.some((c) => c.endpoint === endpoint)) continue
      const t = await createZmqTransport({ rank: 0, worldSize: 2, ...args.options, ipc: endpoint === 'ipc' })
      worker.send({ type: 'endpoint', endpoint })
      const peer = (await fromChild()) as ZmqEndpoints
      const all = [t.endpoints, peer]
      await t.connect(all)
      worker.send({ type: 'endpoints', all } satisfies ParentMessage)
      await fromChild()
      for (const [index, c] of cases.entries()) {
        if (c.endpoint !== endpoint) continue
        worker.send({ type: 'case', index } satisfies ParentMessage)
        const seconds: number[] = []
        let cpu = process.cpuUsage()
        for (let i = 0; i < args.iterations + 2; i++) {
          if (i === 2) cpu = process.cpuUsage() // the first two warm up connections and buffers
          const s = await runCase(t, c, i)
          if (i >= 2) seconds.push(s)
        }
        const { user, system } = process.cpuUsage(cpu)
        await fromChild()
        seconds.sort((a, b) => a - b)
        const median = seconds[seconds.length >> 1]!
        console.log(`${c.endpoint} ${c.mode.padEnd(9)} segments of ${String(c.segmentBytes / 1024).padStart(4)} KiB: ${(TOTAL_BYTES / median / 1e9).toFixed(2)} GB/s (median ${(median * 1e3).toFixed(2)} ms; rank 0 used ${(user / 1e3 / args.iterations).toFixed(1)} + ${(system / 1e3 / args.iterations).toFixed(1)} ms CPU (user + system) per 16 MiB)`)
      }
      worker.send({ type: 'stop' } satisfies ParentMessage)
      await fromChild()
      await t.close()
    }
  } finally {
    worker.kill()
  }
}

async function child(): Promise<void> {
  const fromParent = messages(process)
  for (;;) {
    const hello = (await fromParent()) as { endpoint: 'tcp' | 'ipc' } | undefined
    if (!hello) return
    const t = await createZmqTransport({ rank: 1, worldSize: 2, ...args.options, ipc: hello.endpoint === 'ipc' })
    process.send!(t.endpoints)
    const { all } = (await fromParent()) as Extract<ParentMessage, { type: 'endpoints' }>
    await t.connect(all)
    process.send!('connected')
    for (;;) {
      const message = (await fromParent()) as ParentMessage
      if (message.type === 'stop') break
      const c = cases[(message as { index: number }).index]!
      for (let i = 0; i < args.iterations + 2; i++) await runCase(t, c, i)
      process.send!('done')
    }
    await t.close()
    process.send!('closed')
  }
}

/** One iteration on either rank; returns rank 0's seconds from start to the last byte. */
async function runCase(t: BoundZmqTransport, c: Case, step: number): Promise<number> {
  const peer = 1 - t.rank
  const tag = (op: number, segment: number): Tag => ({ round: 0, step, op, collective: 0, ringStep: 0, segment })
  // Start together: rank 1 says it is ready, rank 0 answers go.
  if (t.rank === 1) {
    await t.send(peer, tag(0, 0), payload.subarray(0, 1))
    await t.recv(peer, tag(1, 0), { timeoutMs: TIMEOUT_MS })
  } else {
    await t.recv(peer, tag(0, 0), { timeoutMs: TIMEOUT_MS })
    await t.send(peer, tag(1, 0), payload.subarray(0, 1))
  }
  const start = process.hrtime.bigint()
  const segments = TOTAL_BYTES / c.segmentBytes
  const sending = t.rank === 0 || c.mode === 'both ways'
  const receiving = t.rank === 1 || c.mode === 'both ways'
  const work: Promise<unknown>[] = []
  // Received segments go back to the transport as soon as they are in, as the collectives
  // do (Note [Releasing received buffers]); --keep leaves them to the GC instead.
  const release = (bytes: Uint8Array) => { if (!args.keep) t.release(bytes) }
  for (let s = 0; s < segments && receiving; s++) work.push(t.recv(peer, tag(2, s), { timeoutMs: TIMEOUT_MS }).then(release))
  for (let s = 0; s < segments && sending; s++) work.push(t.send(peer, tag(2, s), payload.subarray(s * c.segmentBytes, (s + 1) * c.segmentBytes)))
  await Promise.all(work)
  // One way: the sender stops the clock when the receiver confirms the last segment.
  if (c.mode === 'one way') {
    if (t.rank === 1) await t.send(peer, tag(3, 0), payload.subarray(0, 1))
    else await t.recv(peer, tag(3, 0), { timeoutMs: TIMEOUT_MS })
  }
  return Number(process.hrtime.bigint() - start) / 1e9
}

function messages(channel: NodeJS.Process | ReturnType<typeof fork>): () => Promise<unknown> {
  const queue: unknown[] = []
  const waiting: ((value: unknown) => void)[] = []
  channel.on('message', (m: unknown) => (waiting.length > 0 ? waiting.shift()!(m) : queue.push(m)))
  channel.on('disconnect', () => { for (const w of waiting.splice(0)) w(undefined) })
  return () => (queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((resolve) => waiting.push(resolve)))
}

function parseArgs(argv: string[]): { iterations: number; options: Partial<ZmqTransportOptions>; only: string; keep: boolean } {
  let iterations = 25
  let only = ''
  let keep = false
  let options: Partial<ZmqTransportOptions> = {}
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--keep') { keep = true; i-- }
    else if (argv[i] === '--iterations') iterations = Number(argv[i + 1])
    else if (argv[i] === '--only') only = argv[i + 1]!
    else if (argv[i] === '--options') options = JSON.parse(argv[i + 1]!) as Partial<ZmqTransportOptions>
    else throw new Error(`unknown argument ${argv[i]}; expected --iterations N, --options JSON, --only TEXT or --keep`)
  }
  return { iterations, options, only, keep }
}
