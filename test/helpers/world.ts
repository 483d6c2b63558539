/**
 * A world of `worldSize` ranks for collective tests, over one transport kind. `run()` runs
 * one body per rank concurrently and has its own deadline: a hang fails with the ranks that
 * did not finish and the tag each one is waiting on (Horovod's "Missing ranks:").
 */
import { InProcessHub, type Tag, type Transport } from '@ringtrain/core'
import { formatTag } from '@ringtrain/core/unstable-internals-do-not-import'
import { scaled } from './slack.js'

export type WorldKind = 'in-process' | 'zeromq'

export interface World extends AsyncDisposable {
  readonly kind: WorldKind
  readonly worldSize: number
  readonly transports: Transport[]
  run<T>(body: (t: Transport) => Promise<T>, options?: { deadlineMs?: number }): Promise<T[]>
}

/** Transports whose pending `recv` is visible, for the hang report. */
class Tracked implements Transport {
  waitingFor: { peer: number; tag: Tag } | undefined
  constructor(readonly inner: Transport) {}
  get rank() { return this.inner.rank }
  get worldSize() { return this.inner.worldSize }
  send(peer: number, tag: Tag, bytes: Uint8Array) { return this.inner.send(peer, tag, bytes) }
  async recv(peer: number, tag: Tag, options: { timeoutMs: number }) {
    this.waitingFor = { peer, tag }
    try { return await this.inner.recv(peer, tag, options) } finally { this.waitingFor = undefined }
  }
  release(bytes: Uint8Array) { this.inner.release?.(bytes) }
  close() { return this.inner.close() }
}

export type TransportFactory = (worldSize: number) => Promise<Transport[]>

const factories: Record<WorldKind, TransportFactory> = {
  'in-process': async (worldSize) => new InProcessHub(worldSize).transports(),
  zeromq: async () => { throw new Error('zeromq worlds are not wired yet') },
}

/** Lets the ZeroMQ harness register itself without this file importing zeromq. */
export function registerWorldKind(kind: WorldKind, factory: TransportFactory): void {
  factories[kind] = factory
}

export async function createWorld(kind: WorldKind, worldSize: number): Promise<World> {
  const transports = (await factories[kind](worldSize)).map((t) => new Tracked(t))
  return {
    kind,
    worldSize,
    transports,
    async run(body, options = {}) {
      const deadlineMs = options.deadlineMs ?? scaled(20_000)
      const finished = new Array<boolean>(worldSize).fill(false)
      let timer: NodeJS.Timeout | undefined
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const missing = transports.filter((_, r) => !finished[r]).map((t) =>
            `rank ${t.rank}${t.waitingFor ? ` waiting on rank ${t.waitingFor.peer} for ${formatTag(t.waitingFor.tag)}` : ' (not in a recv)'}`)
          reject(new Error(`world.run (${kind}, ${worldSize} ranks) passed its ${deadlineMs} ms deadline. Missing ranks: ${missing.join('; ')}`))
        }, deadlineMs)
      })
      try {
        return await Promise.race([
          Promise.all(transports.map(async (t, rank) => { const result = await body(t); finished[rank] = true; return result })),
          deadline,
        ])
      } finally {
        clearTimeout(timer)
      }
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(transports.map((t) => t.close()))
    },
  }
}
