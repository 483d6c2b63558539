/**
 * What the test bed's shaped links carry with plain TCP (node:net, no ZeroMQ, no encryption),
 * measured by `bench allreduce --testbed-hosts` before the all-reduce cases, so that each
 * ratio to the bound can be read against what the bed itself delivers:
 *  - `one link`: host 1 streams to host 2 alone: the link's goodput (TCP/IP headers take
 *    about 4.4 % of a 1500-byte frame, so about 956 of 1000 Mbit/s is the most it can show);
 *  - `ring`: every host of the N streams to its right neighbour at once, the all-reduce's
 *    own pattern (each host sends and receives at full rate): on a small machine, the CPU
 *    that forwards all of it shows here.
 * Each figure is Mbit/s of payload per link (for `ring`, the median link and the slowest),
 * over the last 2 s of a 2.5 s stream (tcp-ring-host.ts), and its fraction of --link-mbit.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Testbed } from './testbed.js'
import type { TcpHostMessage, TcpParentMessage } from './tcp-ring-host.js'

const hostScript = fileURLToPath(new URL('./tcp-ring-host.ts', import.meta.url))

export interface TcpFigure {
  op: 'tcp'
  pattern: 'one link' | 'ring'
  workers: number
  linkMbit: number
  /** Payload Mbit/s per link: the one link's, or the median of the ring's links. */
  mbit: number
  /** The ring's slowest link (the one link's figure for `one link`). */
  slowestMbit: number
  /** `mbit` / linkMbit. */
  linkFraction: number
  seconds: number
}

/** Streams for `ms` on `hosts` hosts of the bed (1..hosts) in `pattern`; resolves with its figure. */
export async function measureTcp(bed: Testbed, hosts: number, pattern: TcpFigure['pattern'], ms = 2_500): Promise<TcpFigure> {
  const children: ChildProcess[] = []
  try {
    const inboxes = Array.from({ length: hosts }, (_, i) => {
      const host = i + 1
      const [command, ...prefix] = bed.on(host)
      const child = spawn(command!, [...prefix, process.execPath, '--import', 'tsx', hostScript], {
        env: { ...bed.env, RINGTRAIN_TCP_LISTEN: bed.address(host) },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      })
      children.push(child)
      return messages(child, host)
    })
    await Promise.all(inboxes.map((inbox) => inbox('listening')))
    const senders = pattern === 'ring' ? inboxes.map((_, i) => i) : [0]
    const receivers = senders.map((i) => (i + 1) % hosts)
    for (const [i, child] of children.entries()) {
      const to = senders.includes(i) ? bed.address(((i + 1) % hosts) + 1) : undefined
      child.send({ type: 'go', ms, ...(to ? { to } : {}) } satisfies TcpParentMessage)
    }
    const received = await Promise.all(receivers.map((i) => inboxes[i]!('received'))) as Extract<TcpHostMessage, { type: 'received' }>[]
    const rates = received.map((r) => (r.bytes * 8) / (r.ms / 1000) / 1e6).sort((a, b) => a - b)
    const mbit = rates[Math.floor(rates.length / 2)]!
    return { op: 'tcp', pattern, workers: hosts, linkMbit: bed.linkMbit, mbit: Math.round(mbit), slowestMbit: Math.round(rates[0]!), linkFraction: Number((mbit / bed.linkMbit).toFixed(3)), seconds: (ms - 500) / 1000 }
  } finally {
    for (const child of children) child.kill('SIGKILL')
  }
}

function messages(child: ChildProcess, host: number): (type: TcpHostMessage['type']) => Promise<TcpHostMessage> {
  const arrived: TcpHostMessage[] = []
  const waiters: { type: TcpHostMessage['type']; resolve: (m: TcpHostMessage) => void; reject: (e: Error) => void }[] = []
  const settle = () => {
    for (const w of [...waiters]) {
      const index = arrived.findIndex((m) => m.type === w.type)
      if (index < 0) continue
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve(arrived.splice(index, 1)[0]!)
    }
  }
  const failAll = (error: Error) => { for (const w of waiters.splice(0)) w.reject(error) }
  child.on('message', (message: TcpHostMessage) => {
    if (message.type === 'failed') return failAll(new Error(`the raw TCP check failed on test-bed host ${host}: ${message.message}`))
    arrived.push(message)
    settle()
  })
  child.on('exit', (code, signal) => failAll(new Error(`the raw TCP check's process on test-bed host ${host} exited (code ${code}, signal ${signal}) before it answered.`)))
  return (type) => new Promise((resolve, reject) => {
    waiters.push({ type, resolve, reject })
    settle()
  })
}
