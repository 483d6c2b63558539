/**
 * `ringtrain bench allreduce`: ring all-reduce over ZeroMQ between worker processes on
 * 127.0.0.1. For each worker count it forks that many ranks (allreduce-rank.ts), and for
 * each size it times the iterations after a warm-up. An iteration's time is the slowest
 * rank's, from the barrier before it to its own finish; the figure is the median over
 * iterations. Bus bandwidth is 2(N-1)/N × bytes / time (what each rank sends and receives),
 * the figure NCCL's tests report, comparable across worker counts.
 *
 * `--secure on` (the default, as jobs run) gives the ranks a fresh job key; `--secure off`
 * runs them without one. Same-host ranks talk over ipc, which authenticates without
 * encryption unless `--encrypt-local`; `--link tcp` makes them use loopback tcp, which is
 * always encrypted with a key (Note [Job security] in @ringtrain/core).
 *
 * `--testbed-hosts H --link-mbit R` runs rank r on host r+1 of a test bed of H emulated
 * hosts (testbed.ts: network namespaces, every link shaped to R Mbit/s both ways), over tcp
 * as ranks on different machines talk: CURVE-encrypted with the key, or `--secure off`.
 * Each case then also carries the link rate and `boundMs`, the time the ring cannot beat:
 * 2(N−1)/N × bytes at R (every rank sends and receives that much over its own link).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process'
import { availableParallelism, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { ConfigError, generateJobKey, writePrivateKeyFile } from '@ringtrain/core'
import type { ParentMessage, RankMessage } from './allreduce-rank.js'
import { ringBoundMs, startTestbed, testbedOptions, type Testbed } from './testbed.js'
import { measureTcp, type TcpFigure } from './tcp-ring.js'

const rankScript = fileURLToPath(new URL('./allreduce-rank.ts', import.meta.url))
const WARMUP = 3
/** On the bed an iteration takes up to seconds, and the raw TCP check has already run over the links. */
const WARMUP_ON_BED = 2

export interface AllReduceFigure {
  op: 'allreduce'
  workers: number
  bytes: number
  medianMs: number
  p90Ms: number
  busGBps: number
  /** 'off' (no key), 'authenticated' (key; ipc unencrypted) or 'encrypted' (CURVE on every byte). */
  security: 'off' | 'authenticated' | 'encrypted'
  link: 'ipc' | 'tcp'
  /** On the test bed: the link rate (Mbit/s), the ring's bound at that rate, and medianMs / boundMs. */
  linkMbit?: number
  boundMs?: number
  boundRatio?: number
  testbedHosts?: number
  /** CPU time of one rank (all its threads) per iteration, ms, median over ranks. */
  rankCpuMs?: number
  /**
   * All ranks' CPU time per iteration spread over this machine's cores, ms: no iteration can
   * be faster while the ranks share these cores (the test bed's do); above boundMs, the CPU
   * and not the link is the limit. Kernel work in softirq context is not all counted.
   */
  cpuFloorMs?: number
  /** The machine's 1-minute load average when the case ended (other work shows here). */
  load1?: number
}

interface Setup { secure: boolean; encryptLocal: boolean; link: 'ipc' | 'tcp'; keyFile?: string; bed?: Testbed }

export async function run(argv: Record<string, unknown>): Promise<void> {
  const workerCounts = parseList(String(argv['workers'] ?? '2,4'), '--workers', parseCount)
  const sizes = parseList(String(argv['sizes'] ?? '1MiB,16MiB,64MiB'), '--sizes', parseBytes)
  const iterations = Number(argv['iterations'] ?? 20)
  if (!Number.isInteger(iterations) || iterations < 10) throw new ConfigError(`--iterations (${iterations}) must be an integer of at least 10.`)
  const segmentBytes = process.env['RINGTRAIN_SEGMENT_BYTES'] ? Number(process.env['RINGTRAIN_SEGMENT_BYTES']) : undefined
  const json = argv['json'] === true
  const secure = String(argv['secure'] ?? 'on')
  if (secure !== 'on' && secure !== 'off') throw new ConfigError(`--secure must be on or off; got ${secure}.`, { flag: 'secure', got: secure })
  const bedOptions = testbedOptions(argv)
  // Ranks on other hosts talk over tcp, as they do across machines.
  const link = bedOptions ? 'tcp' : String(argv['link'] ?? 'ipc')
  if (link !== 'ipc' && link !== 'tcp') throw new ConfigError(`--link must be ipc or tcp; got ${link}.`, { flag: 'link', got: link })
  const setup: Setup = { secure: secure === 'on', encryptLocal: argv['encrypt-local'] === true, link }
  if (setup.encryptLocal && !setup.secure) throw new ConfigError('--encrypt-local needs --secure on.', { flag: 'encrypt-local' })
  const tooMany = bedOptions && workerCounts.find((n) => n > bedOptions.hosts)
  if (bedOptions && tooMany) throw new ConfigError(`--workers ${tooMany} needs as many test-bed hosts (one rank per host); --testbed-hosts is ${bedOptions.hosts}.`, { flag: 'workers', expected: `≤ ${bedOptions.hosts}`, got: tooMany })
  const keyFile = setup.secure ? writePrivateKeyFile(generateJobKey()) : undefined
  setup.keyFile = keyFile?.path
  try {
    if (bedOptions) setup.bed = startTestbed(bedOptions.hosts, bedOptions.linkMbit)
    if (!json) console.log(`security ${describeSecurity(setup)} over ${link}${setup.bed ? `, one rank per test-bed host, links at ${setup.bed.linkMbit} Mbit/s` : ''}\nworkers        bytes   median ms    p90 ms   bus GB/s${setup.bed ? '   bound ms   ratio' : ''}`)
    if (setup.bed && setup.bed.hosts >= 2) printTcp(await measureTcp(setup.bed, 2, 'one link'), json)
    for (const workers of workerCounts) {
      if (setup.bed) printTcp(await measureTcp(setup.bed, workers, 'ring'), json)
      const ranks = await startRanks(workers, setup)
      try {
        for (const bytes of sizes) {
          // A slow link must not hit the ranks' deadline: ten times the bound, at least a minute.
          const timeoutMs = Math.max(60_000, setup.bed ? 10 * ringBoundMs(workers, bytes, setup.bed.linkMbit) : 0)
          const figure = await measure(ranks, { type: 'run', bytes, warmup: setup.bed ? WARMUP_ON_BED : WARMUP, iterations, segmentBytes, timeoutMs }, setup)
          console.log(json ? JSON.stringify(figure) : formatRow(figure))
        }
      } finally {
        await stopRanks(ranks)
      }
    }
  } finally {
    keyFile?.remove()
    setup.bed?.down()
  }
}

function printTcp(figure: TcpFigure, json: boolean): void {
  console.log(json ? JSON.stringify(figure) : `raw TCP, ${figure.pattern === 'ring' ? `ring of ${figure.workers} hosts` : 'one link'}: ${figure.mbit} Mbit/s per link${figure.pattern === 'ring' ? ` (median; slowest ${figure.slowestMbit})` : ''}, ${(figure.linkFraction * 100).toFixed(1)} % of the link rate`)
}

function describeSecurity(setup: Setup): AllReduceFigure['security'] {
  if (!setup.secure) return 'off'
  return setup.link === 'tcp' || setup.encryptLocal ? 'encrypted' : 'authenticated'
}

interface Rank { child: ChildProcess; next: (type: RankMessage['type']) => Promise<RankMessage> }

const live = new Set<ChildProcess>()
let hooked = false
/** Leaves no rank behind: kill the children when we exit, or on Ctrl-C. */
function hookExit(): void {
  if (hooked) return
  hooked = true
  process.on('exit', () => { for (const child of live) child.kill('SIGKILL') })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130))
}

async function startRanks(worldSize: number, setup: Setup): Promise<Rank[]> {
  hookExit()
  const ranks = Array.from({ length: worldSize }, (_, rank) => {
    const execArgv = ['--import', 'tsx', ...rankNodeFlags(), ...process.execArgv.filter((a) => a.startsWith('--cpu-prof'))]
    // The ranks run as launched workers do (see Note [Receive buffers and malloc]).
    const env = { GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456', ...process.env, ...setup.bed?.env, RINGTRAIN_BENCH_RANK: String(rank), RINGTRAIN_BENCH_WORLD_SIZE: String(worldSize), ...securityEnv(setup), ...(setup.bed ? { RINGTRAIN_BENCH_HOST: setup.bed.address(rank + 1) } : {}) }
    const stdio: ['ignore', 'inherit', 'inherit', 'ipc'] = ['ignore', 'inherit', 'inherit', 'ipc']
    // On the bed, `testbed.sh exec` execs node inside host rank+1; the IPC channel's fd goes with it.
    const [command, ...prefix] = setup.bed ? setup.bed.on(rank + 1) : []
    const child = command ? spawn(command, [...prefix, process.execPath, ...execArgv, rankScript], { env, stdio }) : fork(rankScript, [], { execArgv, env, stdio })
    live.add(child)
    child.on('exit', () => live.delete(child))
    return { child, next: inbox(child, rank) }
  })
  const endpoints = await Promise.all(ranks.map(async (r) => ((await r.next('endpoints')) as Extract<RankMessage, { type: 'endpoints' }>).endpoints))
  for (const r of ranks) r.child.send({ type: 'connect', all: endpoints } satisfies ParentMessage)
  await Promise.all(ranks.map((r) => r.next('ready')))
  return ranks
}

/** The key travels as a file's path (mode 0600 in a private directory), never its bytes. */
function securityEnv(setup: Setup): NodeJS.ProcessEnv {
  return {
    RINGTRAIN_BENCH_LINK: setup.link,
    ...(setup.keyFile ? { RINGTRAIN_BENCH_SECRET_FILE: setup.keyFile } : {}),
    ...(setup.encryptLocal ? { RINGTRAIN_BENCH_ENCRYPT_LOCAL: '1' } : {}),
  }
}

/** The messages of one rank, awaited by type; a failure or an early exit rejects. */
function inbox(child: ChildProcess, rank: number): Rank['next'] {
  const queue: RankMessage[] = []
  let waiter: { resolve: (m: RankMessage) => void; reject: (e: Error) => void } | undefined
  const fail = (error: Error) => { if (waiter) { waiter.reject(error); waiter = undefined } }
  child.on('message', (message: RankMessage) => {
    if (message.type === 'failed') return fail(new Error(message.message))
    if (waiter) { waiter.resolve(message); waiter = undefined } else queue.push(message)
  })
  child.on('exit', (code, signal) => fail(new Error(`bench rank ${rank} exited (code ${code}, signal ${signal}) before it answered.`)))
  return (type) => new Promise((resolve, reject) => {
    const queued = queue.shift()
    if (queued) return queued.type === type ? resolve(queued) : reject(new Error(`bench rank ${rank} sent '${queued.type}', expected '${type}'.`))
    waiter = { resolve: (m) => (m.type === type ? resolve(m) : reject(new Error(`bench rank ${rank} sent '${m.type}', expected '${type}'.`))), reject }
  })
}

async function measure(ranks: Rank[], message: Extract<ParentMessage, { type: 'run' }>, setup: Setup): Promise<AllReduceFigure> {
  for (const r of ranks) r.child.send(message)
  const results = (await Promise.all(ranks.map((r) => r.next('result')))) as Extract<RankMessage, { type: 'result' }>[]
  const bad = results.findIndex((r) => !r.checked)
  if (bad >= 0) throw new Error(`bench rank ${bad} ended with values other than the closed-form average: the all-reduce is wrong.`)
  const slowest = results[0]!.timesMs.map((_, i) => Math.max(...results.map((r) => r.timesMs[i]!))).sort((a, b) => a - b)
  const medianMs = slowest[Math.floor(slowest.length / 2)]!
  const workers = ranks.length
  const busGBps = ((2 * (workers - 1)) / workers) * message.bytes / (medianMs / 1000) / 1e9
  const round = (x: number, digits: number) => Number(x.toFixed(digits))
  const figure: AllReduceFigure = { op: 'allreduce', workers, bytes: message.bytes, medianMs: round(medianMs, 3), p90Ms: round(slowest[Math.floor(slowest.length * 0.9)]!, 3), busGBps: round(busGBps, 3), security: describeSecurity(setup), link: setup.link }
  const iterations = slowest.length
  const cpu = results.map((r) => r.cpuMs / iterations).sort((a, b) => a - b)
  const rankCpuMs = round(cpu[Math.floor(cpu.length / 2)]!, 1)
  const cpuFloorMs = round(cpu.reduce((a, b) => a + b, 0) / availableParallelism(), 1)
  const load1 = round(loadavg()[0]!, 2)
  if (!setup.bed) return { ...figure, rankCpuMs, cpuFloorMs, load1 }
  const boundMs = ringBoundMs(workers, message.bytes, setup.bed.linkMbit)
  const { op, bytes, p90Ms, security, link } = figure
  return { op, workers, bytes, linkMbit: setup.bed.linkMbit, medianMs: figure.medianMs, boundMs: round(boundMs, 3), boundRatio: round(medianMs / boundMs, 3), busGBps: figure.busGBps, p90Ms, security, link, testbedHosts: setup.bed.hosts, rankCpuMs, cpuFloorMs, load1 }
}

/** Asks the ranks to exit, and waits for them (a bed is taken down only after), killing stragglers after 5 s. */
async function stopRanks(ranks: Rank[]): Promise<void> {
  const exited = ranks.map((r) => r.child.exitCode !== null || r.child.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => r.child.once('exit', () => resolve())))
  for (const r of ranks) if (r.child.connected) r.child.send({ type: 'exit' } satisfies ParentMessage)
  const timer = setTimeout(() => { for (const r of ranks) r.child.kill('SIGKILL') }, 5_000)
  await Promise.all(exited)
  clearTimeout(timer)
}

function formatRow(f: AllReduceFigure): string {
  const row = `${String(f.workers).padStart(7)} ${String(f.bytes).padStart(12)} ${f.medianMs.toFixed(3).padStart(11)} ${f.p90Ms.toFixed(3).padStart(9)} ${f.busGBps.toFixed(3).padStart(10)}`
  return f.boundMs === undefined ? row : `${row} ${f.boundMs.toFixed(3).padStart(10)} ${f.boundRatio!.toFixed(3).padStart(7)}`
}

function parseList<T>(text: string, flag: string, parse: (item: string, flag: string) => T): T[] {
  return text.split(',').map((item) => parse(item.trim(), flag))
}

function parseCount(item: string, flag: string): number {
  const n = Number(item)
  if (!Number.isInteger(n) || n < 2) throw new ConfigError(`${flag} (${item}) must list worker counts of at least 2.`)
  return n
}

/** `1MiB`, `512KiB`, `1GiB` or a byte count; a multiple of 4 (whole float32). */
export function parseBytes(item: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?$/i.exec(item)
  const unit = { b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 }[(match?.[2] ?? 'b').toLowerCase() as 'b']
  const bytes = match ? Math.round(Number(match[1]) * unit) : NaN
  if (!Number.isInteger(bytes) || bytes <= 0 || bytes % 4 !== 0) {
    throw new ConfigError(`${flag} (${item}) must list sizes such as 1MiB, 512KiB or 4096 (bytes, a positive multiple of 4).`)
  }
  return bytes
}

/** Extra Node/V8 flags for the ranks, for experiments: RINGTRAIN_BENCH_NODE_FLAGS='--trace-gc'. */
function rankNodeFlags(): string[] {
  return (process.env['RINGTRAIN_BENCH_NODE_FLAGS'] ?? '').split(' ').filter(Boolean)
}
