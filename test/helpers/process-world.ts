/**
 * Runs one scenario in `worldSize` OS processes, one rank each, over real ZeroMQ sockets
 * (see rank-main.ts for the exchange with each rank). For tests that must cross process
 * boundaries: throughput, a rank that dies, the ring over ipc/tcp between processes.
 *
 *   const sums = await runInProcesses<{ length: number }, number>({
 *     worldSize: 3, scenario: fileURLToPath(new URL('./scenarios.ts', import.meta.url)),
 *     exportName: 'sumRanks', params: { length: 10 } })
 *
 * Fails with the first rank's error (message names the rank, `code` kept), or on the
 * deadline with the ranks that did not finish. Every child is killed before it returns or
 * throws, and also if this process exits first.
 *
 * Two deadlines: starting the processes (node, tsx, binding a transport) is what a busy
 * machine stretches most and says nothing about the scenario, so it has its own generous
 * one; the scenario's deadline starts once every rank is bound and told the others' endpoints.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ZmqEndpoints, ZmqTransportOptions } from '@ringtrain/core'
import type { ParentMessage, RankMessage, StartMessage } from './rank-main.js'
import { scaled } from './slack.js'

export type { Scenario } from './rank-main.js'

export interface RunInProcessesOptions<P> {
  worldSize: number
  /** Absolute path of a .ts module; its export `exportName` is a `Scenario<P, R>`. */
  scenario: string
  exportName: string
  /** Passed to every rank by structured clone (typed arrays are fine). */
  params: P
  /** From the moment every rank is bound and told the others' endpoints to the last result; default scaled(30 000) ms. */
  deadlineMs?: number
  /** From fork until every rank has bound its transport; default scaled(60 000) ms. */
  startupMs?: number
  transportOptions?: Partial<ZmqTransportOptions>
}

/** An error a rank reported: `code` and `rank` kept from the other side. */
export class RankFailedError extends Error {
  constructor(readonly rank: number, readonly code: string | undefined, message: string, readonly remote?: unknown) {
    super(message)
    this.name = 'RankFailedError'
  }
}

/** See Note [Receive buffers and malloc] (packages/core/src/transport/zeromq-options.ts). */
const MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456'
const rankMain = fileURLToPath(new URL('./rank-main.ts', import.meta.url))
const repositoryRoot = fileURLToPath(new URL('../..', import.meta.url))
const DEFAULT_DEADLINE_MS = scaled(30_000)
const DEFAULT_STARTUP_MS = scaled(60_000)

/**
 * vitest's timeout for a test that calls runInProcesses `runs` times in a row: past both of
 * its deadlines and the clean-up, so that a hang is reported by runInProcesses's error
 * (which names the missing ranks) rather than by vitest's bare "Test timed out".
 */
export function runInProcessesTimeout(deadlineMs = DEFAULT_DEADLINE_MS, runs = 1): number {
  return runs * (DEFAULT_STARTUP_MS + deadlineMs + 5_000) + 10_000
}

export async function runInProcesses<P, R>(options: RunInProcessesOptions<P>): Promise<R[]> {
  const { worldSize, scenario, exportName, params, deadlineMs = DEFAULT_DEADLINE_MS, startupMs = DEFAULT_STARTUP_MS, transportOptions = {} } = options
  const children: ChildProcess[] = []
  const killAll = () => { for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') }
  process.on('exit', killAll)
  let timer: NodeJS.Timeout | undefined
  try {
    return await new Promise<R[]>((resolve, reject) => {
      const endpoints: (ZmqEndpoints | undefined)[] = new Array(worldSize).fill(undefined)
      const results = new Array<R>(worldSize)
      const finished = new Array<boolean>(worldSize).fill(false)
      const fail = (error: Error) => { killAll(); reject(error) }
      const broadcast = (message: ParentMessage) => { for (const child of children) if (child.connected) child.send(message) }
      timer = setTimeout(() => {
        const missing = endpoints.flatMap((e, rank) => (e === undefined ? [rank] : []))
        fail(new Error(`runInProcesses (${worldSize} ranks, ${exportName}): ranks ${missing.join(', ')} did not bind a transport within ${startupMs} ms of being started.`))
      }, startupMs)
      const startDeadline = () => {
        clearTimeout(timer)
        timer = setTimeout(() => {
          const missing = finished.flatMap((done, rank) => (done ? [] : [rank]))
          fail(new Error(`runInProcesses (${worldSize} ranks, ${exportName}) passed its ${deadlineMs} ms deadline. Missing ranks: ${missing.join(', ')}.`))
        }, deadlineMs)
      }
      for (let rank = 0; rank < worldSize; rank++) {
        const child = fork(rankMain, [], {
          cwd: repositoryRoot,
          env: { GLIBC_TUNABLES: MALLOC_TUNABLES, ...process.env },
          execArgv: ['--import', 'tsx'],
          serialization: 'advanced',
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        })
        children.push(child)
        child.on('error', (error) => fail(new RankFailedError(rank, undefined, `rank ${rank}'s process failed: ${error.message}`)))
        child.on('exit', (code, signal) => {
          if (!finished[rank]) fail(new RankFailedError(rank, undefined, `rank ${rank}'s process exited (${signal ?? `code ${code}`}) before it reported a result.`))
        })
        child.on('message', (message: RankMessage) => {
          if (message.type === 'endpoints') {
            endpoints[rank] = message.endpoints
            if (endpoints.every((e) => e !== undefined)) {
              startDeadline()
              broadcast({ type: 'connect', all: endpoints as ZmqEndpoints[] })
            }
          } else if (message.type === 'error') {
            const { name, code, message: text } = message.error
            finished[rank] = true
            fail(new RankFailedError(rank, code, `rank ${rank} failed: ${name}${code ? ` [${code}]` : ''}: ${text}`, message.error))
          } else {
            finished[rank] = true
            results[rank] = message.value as R
            if (finished.every(Boolean)) {
              broadcast({ type: 'exit' })
              resolve(results)
            }
          }
        })
        const start: StartMessage = { type: 'start', rank, worldSize, scenario, exportName, params, transportOptions }
        child.send(start)
      }
    })
  } finally {
    clearTimeout(timer)
    await Promise.all(children.map((child) => exited(child, 2_000)))
    killAll()
    await Promise.all(children.map((child) => exited(child, 2_000)))
    process.off('exit', killAll)
  }
}

/** Resolves when `child` has exited, or after `waitMs`. */
function exited(child: ChildProcess, waitMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, waitMs)
    child.once('exit', () => { clearTimeout(timer); resolve() })
  })
}
