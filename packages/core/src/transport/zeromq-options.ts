/**
 * Options and endpoints of the ZeroMQ transport. Types only and defaults: importing this
 * file does not load the native addon.
 */
import { createHash } from 'node:crypto'
import { readFileSync, readlinkSync } from 'node:fs'
import { hostname } from 'node:os'
import { INSECURE, type JobSecurity } from '../security/socket-security.js'
import type { Transport } from './transport.js'

/**
 * Note [Receive buffers and malloc]
 * libzmq mallocs every large incoming message on its I/O thread, and zeromq.js frees it
 * when V8 collects the Buffer. With glibc's defaults, buffers over 128 KiB come from fresh
 * mmap()s, or the heap is trimmed after the free, so every segment received pays page
 * faults and zeroing again (about 4096 faults per 16 MiB). Processes that run the ring
 * should start with
 *   GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456
 * (launchers and test harnesses set it for the workers they spawn; it only works when set
 * before the process starts, and other libcs ignore it). Measured with
 * bench/transport-throughput.ts: up to +40% both ways with segments of 1-4 MiB.
 */

/**
 * 16 MiB of payload plus 4 KiB for the header and ZMTP framing: 64 times the default ring
 * segment (256 KiB). libzmq applies this limit to handshake frames too, before the peer is
 * authenticated (libzmq#4436), so it also bounds what a client without the key can make a
 * worker hold per connection, until the handshake times out (HANDSHAKE_TIMEOUT_MS).
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024 + 4096

/**
 * ZMQ_HANDSHAKE_IVL of the data sockets: a connection that has not authenticated within it
 * is dropped (libzmq's default is 30 s). Honest handshakes take milliseconds; one that
 * waits for a worker busy in a long step is retried.
 */
export const HANDSHAKE_TIMEOUT_MS = 10_000

/** What a worker reports at join so that peers can reach its data socket. */
export interface ZmqEndpoints {
  readonly rank: number
  /**
   * Identifies the machine and its /tmp: peers with the same `hostId` may use `ipc`.
   * Default `hostname/boot_id`: the kernel's boot id tells apart machines that share a
   * hostname, and the hostname tells apart containers that share a kernel but not /tmp.
   */
  readonly hostId: string
  /** `tcp://HOST:PORT` of the ROUTER, always present. */
  readonly tcp: string
  /** `ipc:///PATH` of the same-host ROUTER (a socket file in a private directory), when bound with `ipc: true`. */
  readonly ipc?: string
}

/** A ZeroMQ transport after `bind()`: report `endpoints`, then `connect()` to everyone's. */
export interface BoundZmqTransport extends Transport {
  /** What this rank reports at join. */
  readonly endpoints: ZmqEndpoints
  /** Frees a delivered payload now (Note [Releasing received buffers]). */
  release(bytes: Uint8Array): void
  /**
   * Opens a DEALER to every peer; `all[r]` are rank r's endpoints. `world` gives this
   * transport its rank and world size when `bind()` was called before they were known
   * (a worker binds before it joins, because its endpoints are part of the join).
   */
  connect(all: readonly ZmqEndpoints[], world?: { rank: number; worldSize: number }): Promise<void>
}

export interface ZmqTransportOptions {
  /**
   * The job's key (Note [Job security], security/socket-security.ts). Default INSECURE:
   * any process that reaches the sockets may connect. Workers started by the CLI always
   * pass the key, unless the user asked for --insecure.
   */
  security?: JobSecurity
  /** This transport's rank; leave unset to give it at `connect()`. */
  rank?: number
  /** Ranks in the world; leave unset to give it at `connect()`. */
  worldSize?: number
  /** Interface to bind the data socket on; peers connect to it. Default '127.0.0.1'. */
  host?: string
  /** TCP port of the data socket; 0 (the default) lets the OS choose. */
  port?: number
  /**
   * Also bind an `ipc://` endpoint, which `connect()` prefers for peers that report the
   * same `hostId`. Default true: between two processes on one host, unix sockets carry
   * 1.4-2x what loopback TCP does both ways at once, for less CPU per byte (see the
   * figures in bench/transport-throughput.ts).
   */
  ipc?: boolean
  /** `--transport ipc`: every peer must be reachable over ipc (the same host, provably); `connect()` refuses any other. */
  requireIpc?: boolean
  /**
   * ZMQ_MAXMSGSIZE on the receiving ROUTER, and the limit `send()` enforces, in bytes.
   * A peer that sends a larger frame is disconnected by ZeroMQ (see Note [Oversized frames]).
   */
  maxMessageBytes?: number
  /** ZMQ_SNDHWM: messages queued per peer before `send()` waits. */
  sendHighWaterMark?: number
  /** ZMQ_RCVHWM: messages queued per connection before ZeroMQ stops reading the socket. */
  receiveHighWaterMark?: number
  /** ZMQ_SNDBUF: kernel send buffer in bytes; -1 keeps the OS default (autotuned). */
  sendBufferBytes?: number
  /** ZMQ_RCVBUF: kernel receive buffer in bytes; -1 keeps the OS default (autotuned). */
  receiveBufferBytes?: number
  /**
   * ZMQ_IO_THREADS of the transport's own context. Default 2, so the ROUTER's and the
   * DEALERs' connections can run on separate I/O threads: ipc both ways 0.97-1.67 GB/s
   * against 0.63-1.17 with 1 (bench/transport-throughput.ts, noisy 2-core VM).
   */
  ioThreads?: number
  /**
   * ZMQ_LINGER: how long frames already handed to ZeroMQ keep going out after `close()`,
   * in ms. `close()` itself never waits; this bounds how long process exit may wait for a
   * peer that is gone. Default 1000, so a rank that closes right after its last send of a
   * collective does not drop frames its peer still needs.
   */
  lingerMs?: number
  /** Machine identity reported in the endpoints (see `ZmqEndpoints.hostId`). */
  hostId?: string
  /** Where warnings go (dropped frames). Default console.warn. */
  warn?: (message: string) => void
}

export type ResolvedZmqOptions = Required<Omit<ZmqTransportOptions, 'rank' | 'worldSize'>> & { rank: number; worldSize: number }

export function resolveZmqOptions(options: ZmqTransportOptions): ResolvedZmqOptions {
  return {
    rank: -1,
    worldSize: 0,
    security: INSECURE,
    host: '127.0.0.1',
    port: 0,
    ipc: true,
    requireIpc: false,
    maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
    sendHighWaterMark: 1000,
    receiveHighWaterMark: 1000,
    sendBufferBytes: -1,
    receiveBufferBytes: -1,
    ioThreads: 2,
    lingerMs: 1000,
    hostId: defaultHostId(),
    warn: (message) => console.warn(message),
    ...stripUndefined(options),
  }
}

function stripUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T
}

/**
 * `hostname/boot_id/net:[inode]/mnt:[inode]` on Linux. Two processes may use ipc only when
 * all four agree: the same kernel (boot id) is not enough, since network namespaces (and
 * containers) share a kernel but not abstract sockets, and mount namespaces not /tmp, where
 * the ipc socket file lives. Elsewhere the hostname alone.
 */
function defaultHostId(): string {
  let bootId = ''
  try {
    bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return hostname()
  }
  const namespace = (kind: string) => {
    try {
      return readlinkSync(`/proc/self/ns/${kind}`)
    } catch {
      return `${kind}:?`
    }
  }
  return `${hostname()}/${bootId}/${namespace('net')}/${namespace('mnt')}`
}

/**
 * Endpoints as the control protocol carries them (`JoinRequest.dataEndpoints`, a list of
 * addresses): `[tcp]` or `[tcp, ipc]`. The ipc address embeds a digest of the hostId (see
 * `ipcName`), so a peer can tell from the address alone whether it may use it.
 */
export function endpointsToWire(endpoints: ZmqEndpoints): string[] {
  return endpoints.ipc ? [endpoints.tcp, endpoints.ipc] : [endpoints.tcp]
}

/** The inverse of `endpointsToWire`, for rank `rank`. Unknown address kinds are ignored. */
export function endpointsFromWire(rank: number, addresses: readonly string[]): ZmqEndpoints {
  const tcp = addresses.find((a) => a.startsWith('tcp://')) ?? ''
  const ipc = addresses.find((a) => a.startsWith('ipc://'))
  const hostId = ipc ? (/ringtrain-([0-9a-f]{16})-/.exec(ipc)?.[1] ?? '') : ''
  return { rank, hostId, tcp, ...(ipc ? { ipc } : {}) }
}

/** A 16-hex-digit digest of a hostId: what endpoints carry and compare. */
export function hostIdDigest(hostId: string): string {
  return createHash('sha256').update(hostId).digest('hex').slice(0, 16)
}
