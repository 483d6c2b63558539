/**
 * One rank of `ringtrain bench allreduce`, forked by allreduce.ts with an IPC channel.
 *
 * The exchange with the parent (parent → rank, rank → parent):
 *  1. rank → `{ type: 'endpoints' }` once its ZeroMQ transport is bound on 127.0.0.1;
 *  2. parent → `{ type: 'connect', all }` with every rank's endpoints; rank → `{ type: 'ready' }`;
 *  3. parent → `{ type: 'run', bytes, warmup, iterations }` per size; the rank runs `warmup`
 *     untimed all-reduces, then `iterations` timed ones, each from the exit of a barrier to
 *     its own finish, and answers `{ type: 'result', timesMs, checked }`;
 *  4. parent → `{ type: 'exit' }`, or the IPC channel closes: the rank closes and exits.
 */
import { createZmqTransport, INSECURE, ProcessGroup, readJobKeyFile, type BoundZmqTransport, type JobSecurity } from '@ringtrain/core'

export type ParentMessage =
  | { type: 'connect'; all: BoundZmqTransport['endpoints'][] }
  | { type: 'run'; bytes: number; warmup: number; iterations: number; segmentBytes?: number; timeoutMs: number }
  | { type: 'exit' }

export type RankMessage =
  | { type: 'endpoints'; endpoints: BoundZmqTransport['endpoints'] }
  | { type: 'ready' }
  | { type: 'result'; timesMs: number[]; checked: boolean; cpuMs: number }
  | { type: 'failed'; message: string }

const rank = Number(process.env['RINGTRAIN_BENCH_RANK'])
const worldSize = Number(process.env['RINGTRAIN_BENCH_WORLD_SIZE'])
const send = (message: RankMessage) => process.send!(message)

// How the parent asked the sockets to authenticate (`--secure`, `--encrypt-local`, `--link`); the key by its file's path.
const keyFile = process.env['RINGTRAIN_BENCH_SECRET_FILE']
const security: JobSecurity = keyFile ? { mode: 'key', key: readJobKeyFile(keyFile), encryptLocal: process.env['RINGTRAIN_BENCH_ENCRYPT_LOCAL'] === '1' } : INSECURE
const ipc = process.env['RINGTRAIN_BENCH_LINK'] !== 'tcp'
// On the test bed: this host's address (each rank runs on a host of its own).
const host = process.env['RINGTRAIN_BENCH_HOST'] ?? '127.0.0.1'
const transport = await createZmqTransport({ rank, worldSize, host, port: 0, security, ipc })
const group = new ProcessGroup(transport, { round: 0, timeoutMs: 60_000 })
process.on('disconnect', () => void transport.close().finally(() => process.exit(0)))
process.on('message', (message: ParentMessage) => {
  handle(message).catch((error: unknown) => send({ type: 'failed', message: `rank ${rank}: ${(error as Error).stack ?? String(error)}` }))
})
send({ type: 'endpoints', endpoints: transport.endpoints })

async function handle(message: ParentMessage): Promise<void> {
  if (message.type === 'connect') {
    await transport.connect(message.all)
    await group.barrier({ step: 0, timeoutMs: 30_000 })
    send({ type: 'ready' })
  } else if (message.type === 'run') {
    send({ type: 'result', ...(await timeAllReduce(message)) })
  } else {
    await transport.close()
    process.exit(0)
  }
}

/** Averages (as training does) so values stay (W+1)/2 however often it runs. */
async function timeAllReduce(run: Extract<ParentMessage, { type: 'run' }>): Promise<{ timesMs: number[]; checked: boolean; cpuMs: number }> {
  const data = new Float32Array(run.bytes / 4).fill(rank + 1)
  const timesMs: number[] = []
  let cpuFrom = process.cpuUsage()
  for (let i = 0; i < run.warmup + run.iterations; i++) {
    if (i === run.warmup) cpuFrom = process.cpuUsage()
    await group.barrier({ step: i, timeoutMs: run.timeoutMs })
    const started = performance.now()
    await group.allReduce(data, { step: i, average: true, segmentBytes: run.segmentBytes, timeoutMs: run.timeoutMs })
    if (i >= run.warmup) timesMs.push(performance.now() - started)
  }
  const expected = Math.fround((worldSize + 1) / 2)
  const checked = data.length === 0 || (data[0] === expected && data[data.length - 1] === expected)
  // This process's CPU time over the timed iterations (barriers included): all its threads,
  // JavaScript and libzmq's I/O threads (CURVE), and the kernel's work on its behalf.
  const cpu = process.cpuUsage(cpuFrom)
  return { timesMs, checked, cpuMs: (cpu.user + cpu.system) / 1000 }
}
