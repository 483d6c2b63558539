/**
 * The main thread's handle on the liveness thread (liveness-thread.ts): starts it, publishes
 * the step it reports, reads when it last heard the coordinator, and ends it.
 *
 *   const liveness = LivenessThread.start({ endpoint, jobId, token, intervalMs, security, who })
 *   liveness.setInterval(ms)    // the job's heartbeat interval, once known
 *   liveness.setStep(step)      // Atomics.store into shared memory; the thread reads it
 *   liveness.setPosition(p)     // the ProcessGroup's position, posted to the thread (per phase)
 *   liveness.lastHeardAt        // ms, 0 until the thread heard the coordinator
 *   await liveness.close()      // the thread closes its socket, then ends
 *
 * The thread never keeps the process alive (unref) and dies with it. From TypeScript sources
 * (run through tsx) the thread registers tsx itself: Node 20 does not hand a module loader
 * registered with --import to worker threads.
 */
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { CollectivePosition } from '@ringtrain/core'
import type { LivenessThreadData, LivenessThreadReport } from './liveness-thread.js'

export type LivenessOptions = Omit<LivenessThreadData, 'shared'> & {
  /** Where the thread's log lines go. */
  log: (line: string) => void
  /** Interval between Alive messages; 0 = paused until `setInterval`. */
  intervalMs: number
}

export class LivenessThread {
  private readonly step: Int32Array
  private readonly interval: Int32Array
  private readonly heardAt: BigInt64Array
  private readonly stepSince: Float64Array
  private readonly ended: Promise<void>
  /** Settles once the thread has loaded and opened its socket, or failed. */
  readonly ready: Promise<void>
  private closed = false

  private constructor(private readonly worker: Worker, shared: SharedArrayBuffer, log: (line: string) => void) {
    this.step = new Int32Array(shared, 0, 1)
    this.interval = new Int32Array(shared, 4, 1)
    this.heardAt = new BigInt64Array(shared, 8, 1)
    this.stepSince = new Float64Array(shared, 16, 1)
    let resolveReady!: () => void
    this.ready = new Promise((resolve) => { resolveReady = resolve })
    worker.on('message', (message: LivenessThreadReport) => {
      if (message.kind === 'log') log(message.line)
      if (message.kind === 'ready') resolveReady()
    })
    this.ended = new Promise((resolve) => {
      worker.on('exit', () => resolveReady())
      worker.on('error', (error) => log(`liveness thread failed: ${error.message}; heartbeats from the main thread alone keep this worker alive now, so a step longer than heartbeatIntervalMs × heartbeatMaxMissed will get it declared lost.`))
      worker.on('exit', () => resolve())
    })
    worker.unref()
  }

  static start(options: LivenessOptions): LivenessThread {
    const { log, intervalMs, ...rest } = options
    const shared = new SharedArrayBuffer(24)
    Atomics.store(new Int32Array(shared, 4, 1), 0, intervalMs)
    const workerData: LivenessThreadData = { ...rest, shared }
    return new LivenessThread(newThread(workerData), shared, log)
  }

  /** The interval between Alive messages from now on (the job's heartbeat interval). */
  setInterval(intervalMs: number): void {
    Atomics.store(this.interval, 0, intervalMs)
  }

  setStep(step: number): void {
    if (Atomics.exchange(this.step, 0, step) !== step) this.stepSince[0] = Date.now()
  }

  /**
   * Where the main thread stands in its collectives (Note [Where a rank stands] in
   * @ringtrain/core), for the Alive messages: posted to the thread, which keeps the latest,
   * so a main thread that then computes for a minute still has it reported.
   */
  setPosition(position: CollectivePosition): void {
    if (!this.closed) this.worker.postMessage({ kind: 'position', position })
  }

  /** When the thread last heard the coordinator (ms since the epoch), 0 before it did. */
  get lastHeardAt(): number {
    return Number(Atomics.load(this.heardAt, 0))
  }

  /** Asks the thread to close its socket and end; resolves once it has (or after `timeoutMs`). */
  async close(timeoutMs = 5000): Promise<void> {
    if (!this.closed) {
      this.closed = true
      this.worker.postMessage('close')
    }
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.ended, new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs) })])
    clearTimeout(timer)
  }
}

function newThread(workerData: LivenessThreadData): Worker {
  const here = import.meta.url
  if (!here.endsWith('.ts')) return new Worker(new URL('./liveness-thread.js', here), { workerData })
  // The ESM entry of tsx's API (vitest's module runner has no import.meta.resolve; require finds the CJS twin).
  const tsxApi = typeof import.meta.resolve === 'function'
    ? import.meta.resolve('tsx/esm/api')
    : pathToFileURL(createRequire(here).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href
  const entry = new URL('./liveness-thread.ts', here).href
  const bootstrap = `const { register } = await import(${JSON.stringify(tsxApi)}); register(); await import(${JSON.stringify(entry)})`
  return new Worker(bootstrap, { eval: true, workerData })
}
