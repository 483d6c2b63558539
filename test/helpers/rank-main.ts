/**
 * One rank of `runInProcesses` (process-world.ts), run as `node --import tsx rank-main.ts`
 * by child_process.fork. The exchange with the parent, over the IPC channel:
 *   1. parent → rank: `start` (rank, worldSize, scenario module, export name, params).
 *   2. rank → parent: `endpoints` of its freshly bound ZmqTransport.
 *   3. parent → rank: `connect` with every rank's endpoints, once all have reported.
 *   4. rank → parent: `result` (JSON-able value) or `error` ({name, code, message, context}).
 *   5. parent → rank: `exit` once every rank has reported, so that no rank closes its
 *      sockets while a peer still needs frames from it. The rank then closes and exits.
 * If the parent goes away (IPC channel closed) the rank exits at once.
 */
import { pathToFileURL } from 'node:url'
import { createZmqTransport, type Transport, type ZmqEndpoints, type ZmqTransportOptions } from '@ringtrain/core'

export interface StartMessage {
  type: 'start'
  rank: number
  worldSize: number
  scenario: string
  exportName: string
  params: unknown
  transportOptions: Partial<ZmqTransportOptions>
}
export type ParentMessage = StartMessage | { type: 'connect'; all: ZmqEndpoints[] } | { type: 'exit' }
export type RankMessage =
  | { type: 'endpoints'; endpoints: ZmqEndpoints }
  | { type: 'result'; value: unknown }
  | { type: 'error'; error: { name: string; code?: string; message: string; context?: unknown } }

export type Scenario<P, R> = (transport: Transport, params: P, rank: number) => Promise<R>

const inbox: ParentMessage[] = []
const waiting: ((message: ParentMessage) => void)[] = []
process.on('message', (message: ParentMessage) => (waiting.length > 0 ? waiting.shift()!(message) : inbox.push(message)))
process.on('disconnect', () => process.exit(1))
const next = (): Promise<ParentMessage> => (inbox.length > 0 ? Promise.resolve(inbox.shift()!) : new Promise((resolve) => waiting.push(resolve)))
const tell = (message: RankMessage): Promise<void> => new Promise((resolve, reject) => process.send!(message, undefined, {}, (e) => (e ? reject(e) : resolve())))

async function main(): Promise<void> {
  const start = (await next()) as StartMessage
  const transport = await createZmqTransport({ host: '127.0.0.1', port: 0, ...start.transportOptions, rank: start.rank, worldSize: start.worldSize })
  try {
    await tell({ type: 'endpoints', endpoints: transport.endpoints })
    const { all } = (await next()) as Extract<ParentMessage, { type: 'connect' }>
    await transport.connect(all)
    try {
      const module = (await import(pathToFileURL(start.scenario).href)) as Record<string, unknown>
      const scenario = module[start.exportName]
      if (typeof scenario !== 'function') throw new TypeError(`${start.scenario} has no exported function '${start.exportName}'.`)
      const value: unknown = await (scenario as Scenario<unknown, unknown>)(transport, start.params, start.rank)
      await tell({ type: 'result', value })
    } catch (caught) {
      const error = caught as { name?: string; code?: string; message?: string; context?: unknown }
      await tell({ type: 'error', error: { name: error?.name ?? 'Error', code: error?.code, message: error?.message ?? String(caught), context: error?.context } })
    }
    while ((await next()).type !== 'exit');
  } finally {
    await transport.close()
  }
  process.exit(0)
}

void main()
