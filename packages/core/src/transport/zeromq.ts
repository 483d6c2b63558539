/**
 * ZmqTransport: the data plane over ZeroMQ, and the only file that imports 'zeromq'.
 * It follows Note [Transport semantics] (transport.ts) by delivering into a `PeerInbox`.
 *
 * Sockets. Each rank binds a ROUTER on tcp and, for peers on the same host, a second one on
 * an ipc socket file in a private directory (its data endpoints, reported to peers at
 * join), and opens one DEALER per peer, whose ZMQ_ROUTING_ID is its rank as a string. The
 * ROUTERs thus prefix every incoming message with the sender's rank, and one connection per
 * ordered pair of ranks carries that pair's frames in order (per-peer FIFO for free).
 * Every socket authenticates with the job's key (Note [Job security]): only a peer that
 * completed the handshake can claim a routing id, and ZMQ_ROUTER_HANDOVER lets a real peer
 * that reconnects take its id back from a stale connection.
 * A message is `[header, payload]`: header = encodeFrameHeader() (msgpack, with
 * PROTOCOL_VERSION), payload = the caller's bytes, zero-copy: zeromq.js treats any
 * ArrayBufferView as a buffer and sends more than 128 bytes without copying
 * (src/outgoing_msg.cc), keeping a reference until its I/O thread has written them.
 * Sends to each peer go through a SendQueue (one pending send per socket).
 *
 * Set-up has two phases, because every rank must know every endpoint before connecting:
 *   1. `ZmqTransport.bind(options)` binds the ROUTER; `t.endpoints` is what the worker
 *      reports at join.
 *   2. `t.connect(allEndpoints)`, with every rank's endpoints indexed by rank, opens the
 *      DEALERs. It does not wait for the TCP handshakes: frames sent before a connection
 *      is up wait in ZeroMQ's queue (up to ZMQ_SNDHWM messages).
 *
 * Note [Oversized frames]
 * The ROUTER has ZMQ_MAXMSGSIZE = maxMessageBytes. When a peer sends a larger frame,
 * ZeroMQ does not deliver it: it closes that connection ('disconnect' on the ROUTER, whose
 * address is our own endpoint, so the sender is unknown), the peer's DEALER reconnects,
 * and its later frames arrive. The receiver never crashes; its next recv from that peer
 * fails with E_TAG_MISMATCH (the next frame is not the expected one) or with E_TIMEOUT,
 * and either error then says that the data socket lost a connection and why that happens.
 * Honest ranks never hit this: `send()` refuses payloads over the limit (E_FRAME_TOO_LARGE).
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import * as zmq from 'zeromq'
import { RateLimitedLog } from '../logging/rate-limited-log.js'
import { clientSecurityOptions, linkOf, serverSecurityOptions, zapPolicyFor, type Link } from '../security/socket-security.js'
import { makePrivateDirectory } from '../security/private-dir.js'
import { closeZapHandler, registerZapPolicy, type ZapRegistration } from '../security/zap.js'
import { ConfigError, DistError, FrameError, PeerLostError } from '../errors.js'
import { detachArrayBuffer } from './detach-array-buffer.js'
import { encodeFrameHeader } from '../protocol/frame-header.js'
import { checkFrames } from './zeromq-frames.js'
import { SendQueue } from './send-queue.js'
import { HANDSHAKE_TIMEOUT_MS, hostIdDigest, resolveZmqOptions, type BoundZmqTransport, type ResolvedZmqOptions, type ZmqEndpoints, type ZmqTransportOptions } from './zeromq-options.js'
import { PeerInbox } from './peer-inbox.js'
import type { Tag } from './transport.js'

export class ZmqTransport implements BoundZmqTransport {
  private rankValue: number
  private worldSizeValue: number
  private inbox: PeerInbox
  private outboxes: (SendQueue<[Uint8Array, Uint8Array]> | undefined)[]
  /** Frames that arrived before `connect()` gave this transport its rank (see bind()). */
  private early: Buffer[][] | undefined
  private readonly dealers: zmq.Dealer[] = []
  private readonly receiving: Promise<void>
  private closed = false
  private lostConnections = 0
  /** Our DEALER to each peer whose server refused its handshake: why. */
  private readonly refusedBy = new Map<number, string>()
  private readonly warnings: RateLimitedLog
  /** Payloads delivered and not yet released: the only buffers `release()` detaches. */
  private readonly delivered = new WeakSet<Uint8Array>()

  private constructor(
    private readonly options: ResolvedZmqOptions,
    private readonly context: zmq.Context,
    private readonly routers: readonly zmq.Router[],
    private readonly zap: readonly ZapRegistration[],
    /** The private directory of the ipc socket file, removed by close(). */
    private readonly ipcDir: string | undefined,
    /** What this rank reports at join. */
    readonly endpoints: ZmqEndpoints,
  ) {
    this.rankValue = options.rank
    this.worldSizeValue = options.worldSize
    this.inbox = new PeerInbox(Math.max(this.rank, 0), this.worldSize)
    this.outboxes = new Array<SendQueue<[Uint8Array, Uint8Array]> | undefined>(this.worldSize).fill(undefined)
    this.warnings = new RateLimitedLog(options.warn)
    if (this.rank < 0) this.early = []
    for (const router of routers) router.events.on('disconnect', () => { if (!this.closed) this.lostConnections++ })
    this.receiving = Promise.all(routers.map((router) => this.receiveLoop(router))).then(() => undefined)
  }

  get rank(): number {
    return this.rankValue
  }

  get worldSize(): number {
    return this.worldSizeValue
  }

  /**
   * Phase 1: binds this rank's ROUTER. Rejects with E_CONFIG for bad options. `rank` and
   * `worldSize` may be left out and given to `connect()` instead (a worker binds before it
   * joins); frames that arrive before then are held and checked at `connect()`.
   */
  static async bind(options: ZmqTransportOptions): Promise<ZmqTransport> {
    const o = resolveZmqOptions(options)
    if (options.rank !== undefined || options.worldSize !== undefined) checkWorld(o.rank, o.worldSize)
    if (!Number.isInteger(o.maxMessageBytes) || o.maxMessageBytes < 1) throw new ConfigError(`maxMessageBytes (${o.maxMessageBytes}) must be a positive integer.`)
    const context = new zmq.Context({ ioThreads: o.ioThreads, blocky: false })
    const routers: zmq.Router[] = []
    const zap: ZapRegistration[] = []
    let ipcDir: string | undefined
    const who = o.rank >= 0 ? `rank ${o.rank}` : `the worker (pid ${process.pid})`
    const refusals = new RateLimitedLog(o.warn)
    const openRouter = async (link: Link, endpoint: string): Promise<string> => {
      const policy = zapPolicyFor(o.security, link, (line) => refusals.note(line, `[${who}] the data socket ${line}`))
      const registration = policy === undefined ? undefined : await registerZapPolicy(zmq, context, policy)
      if (registration) zap.push(registration)
      const router = new zmq.Router({
        context,
        linger: o.lingerMs,
        maxMessageSize: o.maxMessageBytes,
        receiveHighWaterMark: o.receiveHighWaterMark,
        receiveBufferSize: o.receiveBufferBytes,
        handover: true,
        handshakeInterval: HANDSHAKE_TIMEOUT_MS,
        ...serverSecurityOptions(o.security, link, registration?.domain),
      })
      routers.push(router)
      await router.bind(endpoint)
      return router.lastEndpoint!
    }
    try {
      const tcp = await openRouter('tcp', `tcp://${o.host}:${o.port}`)
      let ipc: string | undefined
      if (o.ipc) {
        ipcDir = privateIpcDirectory(o.hostId)
        if (ipcDir !== undefined) ipc = await openRouter('ipc', `ipc://${join(ipcDir, 'data.sock')}`)
      }
      return new ZmqTransport(o, context, routers, zap, ipcDir, { rank: o.rank, hostId: hostIdDigest(o.hostId), tcp, ...(ipc ? { ipc } : {}) })
    } catch (cause) {
      for (const router of routers) router.close()
      for (const registration of zap) registration.unregister()
      closeZapHandler(context)
      if (ipcDir !== undefined) rmSync(ipcDir, { recursive: true, force: true })
      throw new ConfigError(`${who} could not bind its data socket on ${o.host}:${o.port}: ${(cause as Error).message}.`, { rank: o.rank }, { cause })
    }
  }

  /**
   * Phase 2: opens a DEALER to every peer. `all[r]` are rank r's endpoints (this rank's
   * own entry is ignored). Prefers ipc for peers on the same host when both sides bound one.
   */
  async connect(all: readonly ZmqEndpoints[], world?: { rank: number; worldSize: number }): Promise<void> {
    if (this.closed) throw this.closedError()
    if (world) this.joinWorld(world.rank, world.worldSize)
    if (this.rank < 0) throw new ConfigError('connect() needs { rank, worldSize } when bind() was called without them.')
    if (all.length !== this.worldSize) throw new ConfigError(`rank ${this.rank} got endpoints for ${all.length} ranks; expected ${this.worldSize}.`, { rank: this.rank, expected: this.worldSize, got: all.length })
    for (let peer = 0; peer < this.worldSize; peer++) {
      if (peer === this.rank) continue
      const endpoints = all[peer]!
      if (endpoints.rank !== peer) throw new ConfigError(`rank ${this.rank} got endpoints of rank ${endpoints.rank} at index ${peer}; expected rank ${peer}.`, { rank: this.rank, peer })
      const sameHost = endpoints.hostId === this.endpoints.hostId
      if (this.options.requireIpc && !(sameHost && endpoints.ipc && this.endpoints.ipc)) {
        throw new ConfigError(`rank ${this.rank} cannot reach rank ${peer} over ipc (--transport ipc): ${sameHost ? 'it bound no ipc socket' : `it is on another host or namespace (${endpoints.hostId}, this one ${this.endpoints.hostId})`}. Use --transport auto, which takes tcp there.`, { rank: this.rank, peer, expected: this.endpoints.hostId, got: endpoints.hostId })
      }
      const address = sameHost && endpoints.ipc ? endpoints.ipc : endpoints.tcp
      const dealer = new zmq.Dealer({
        context: this.context,
        routingId: String(this.rank),
        linger: this.options.lingerMs,
        sendHighWaterMark: this.options.sendHighWaterMark,
        sendBufferSize: this.options.sendBufferBytes,
        // Nothing flows back on these connections but ZeroMQ's own commands.
        maxMessageSize: 1024,
        ...clientSecurityOptions(this.options.security, linkOf(address)),
      })
      this.dealers.push(dealer)
      this.watchHandshakes(dealer, peer, address)
      dealer.connect(address)
      this.outboxes[peer] = new SendQueue((frames) => dealer.send(frames), { errorFor: (cause) => this.sendError(peer, cause) })
    }
  }

  /**
   * Queues `bytes` for `peer` and resolves when ZeroMQ has taken them (zero-copy: do not
   * modify them until the peer has them). Rejects with E_FRAME_TOO_LARGE over
   * maxMessageBytes, E_CLOSED after close(). Does not time out: a peer that stops reading
   * makes sends wait past ZMQ_SNDHWM messages, and the caller's next recv times out.
   */
  send(peer: number, tag: Tag, bytes: Uint8Array): Promise<void> {
    const badPeer = this.checkPeer(peer)
    if (badPeer) return Promise.reject(badPeer)
    if (this.closed) return Promise.reject(this.closedError())
    if (bytes.byteLength > this.options.maxMessageBytes) {
      return Promise.reject(new FrameError('E_FRAME_TOO_LARGE', `rank ${this.rank} refused to send ${bytes.byteLength} bytes to rank ${peer}: over maxMessageBytes (${this.options.maxMessageBytes}), which the receiving socket would refuse. Send it in smaller segments.`, { rank: this.rank, peer, round: tag.round, step: tag.step, op: tag.op, expected: this.options.maxMessageBytes, got: bytes.byteLength }))
    }
    const outbox = this.outboxes[peer]
    if (!outbox) return Promise.reject(new DistError('E_INTERNAL', `rank ${this.rank} sent to rank ${peer} before connect().`, { rank: this.rank, peer }))
    return outbox.push([encodeFrameHeader(this.rank, tag, bytes.byteLength), bytes])
  }

  /** See Note [Transport semantics]; errors say when the data socket lost a connection. */
  recv(peer: number, tag: Tag, options: { timeoutMs: number }): Promise<Uint8Array> {
    const badPeer = this.checkPeer(peer)
    if (badPeer) return Promise.reject(badPeer)
    const lostBefore = this.lostConnections
    const refusedBefore = this.zap.reduce((n, z) => n + z.refused.count, 0)
    return this.inbox.take(peer, tag, options.timeoutMs).catch((error: unknown) => {
      throw this.explainLostConnection(error, peer, lostBefore, refusedBefore)
    })
  }

  /**
   * Frees a delivered payload's memory now rather than at the next GC (Note [Releasing
   * received buffers]). Ignores bytes this transport did not deliver, or already released.
   */
  release(bytes: Uint8Array): void {
    if (!this.delivered.delete(bytes)) return
    if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) detachArrayBuffer(bytes.buffer)
  }

  /** Closes every socket; pending and later calls reject with E_CLOSED. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const error = this.closedError()
    this.inbox.close(error)
    for (const outbox of this.outboxes) outbox?.fail(error)
    for (const dealer of this.dealers) dealer.close()
    for (const router of this.routers) router.close()
    await this.receiving
    for (const registration of this.zap) registration.unregister()
    closeZapHandler(this.context)
    this.warnings.flush()
    // libzmq unlinks an ipc file on its I/O thread some time later: remove the private
    // directory now, so that close() leaves nothing behind when it resolves.
    if (this.ipcDir !== undefined) rmSync(this.ipcDir, { recursive: true, force: true })
  }

  /** Remembers (and logs, rate-limited) that `peer` refused our handshake: its key differs. */
  private watchHandshakes(dealer: zmq.Dealer, peer: number, address: string): void {
    // 'auth': the peer's ZAP refused our key; 'protocol': one side has no key; 'other': a
    // server that cannot open our CURVE HELLO (another key) just closes the connection.
    for (const kind of ['handshake:error:auth', 'handshake:error:protocol', 'handshake:error:other'] as const) {
      dealer.events.on(kind, (event) => {
        const reason = `the handshake of rank ${this.rank} with rank ${peer} at ${address} failed (${event.error.message}): the two ranks hold different job keys, or one runs without a key`
        this.refusedBy.set(peer, reason)
        this.warnings.note(`${kind}-${peer}`, `[rank ${this.rank}] ${reason}.`)
      })
    }
  }

  private async receiveLoop(router: zmq.Router): Promise<void> {
    for (;;) {
      let frames: Buffer[]
      try {
        frames = await router.receive()
      } catch (cause) {
        if (this.closed) return
        this.options.warn(`[rank ${this.rank}] the data socket failed to receive: ${(cause as Error).message}; stopped receiving.`)
        this.inbox.close(new PeerLostError('E_PEER_LOST', `rank ${this.rank}'s data socket failed: ${(cause as Error).message}.`, { rank: this.rank }))
        return
      }
      if (this.early) {
        this.early.push(frames)
        continue
      }
      this.dispatch(frames)
    }
  }

  /** Gives a transport bound without a rank its place in the world, then replays held frames. */
  private joinWorld(rank: number, worldSize: number): void {
    checkWorld(rank, worldSize)
    if (!this.early) {
      if (rank !== this.rank || worldSize !== this.worldSize) throw new ConfigError(`rank ${this.rank} of ${this.worldSize} was asked to connect as rank ${rank} of ${worldSize}.`, { rank: this.rank })
      return
    }
    this.rankValue = rank
    this.worldSizeValue = worldSize
    this.inbox = new PeerInbox(rank, worldSize)
    this.outboxes = new Array<SendQueue<[Uint8Array, Uint8Array]> | undefined>(worldSize).fill(undefined)
    const held = this.early
    this.early = undefined
    for (const frames of held) this.dispatch(frames)
  }

  private dispatch(frames: Buffer[]): void {
    const checked = checkFrames(this.rank, this.worldSize, frames)
    if (checked.kind === 'message') {
      this.delivered.add(checked.bytes)
      this.inbox.deliver(checked.peer, checked.tag, checked.bytes)
    }
    else if (checked.kind === 'error') this.inbox.deliverError(checked.peer, checked.error)
    // One key for every unknown routing id: the reason names the id, which the sender
    // chooses, and a key holder cycling through ids must not get a line for each one.
    else this.warnings.note('unknown routing id', `[rank ${this.rank}] ${checked.reason}`)
  }

  /**
   * Adds to a timeout or tag mismatch what this data socket saw meanwhile: a lost
   * connection, or refused handshakes, so that the error does not blame a peer whose only
   * fault was that someone else's connection was refused.
   */
  private explainLostConnection(error: unknown, peer: number, lostBefore: number, refusedBefore: number): unknown {
    if (!(error instanceof DistError) || (error.code !== 'E_TIMEOUT' && error.code !== 'E_TAG_MISMATCH')) return error
    const lost = this.lostConnections > lostBefore
    const refusedHere = this.zap.reduce((n, z) => n + z.refused.count, 0) - refusedBefore
    const refusedThere = this.refusedBy.get(peer)
    if (!lost && refusedHere <= 0 && refusedThere === undefined) return error
    let why = ''
    if (lost) why += ` Meanwhile rank ${this.rank}'s data socket lost a connection: a peer exited, or sent a frame over maxMessageBytes (${this.options.maxMessageBytes}), which ZeroMQ refuses by disconnecting the sender.`
    if (refusedThere !== undefined) why += ` Also, ${refusedThere}.`
    if (refusedHere > 0) {
      const last = this.zap.map((z) => z.refused.last).filter(Boolean).at(-1)
      why += ` Meanwhile rank ${this.rank}'s data socket refused ${refusedHere} connection(s) that did not hold this job's key (last ${last}); if one of them was rank ${peer}, it was started with another --secret-file.`
    }
    const Class = error.constructor as new (...args: ConstructorParameters<typeof DistError>) => DistError
    return new Class(error.code, error.message + why, { ...error.context, lostConnection: lost, refusedConnections: Math.max(refusedHere, 0) }, { cause: error })
  }

  private sendError(peer: number, cause: unknown): DistError {
    if (this.closed) return this.closedError()
    return new PeerLostError('E_PEER_LOST', `rank ${this.rank} could not send to rank ${peer}: ${(cause as Error).message}.`, { rank: this.rank, peer }, { cause })
  }

  private checkPeer(peer: number): DistError | undefined {
    if (!Number.isInteger(peer) || peer < 0 || peer >= this.worldSize || peer === this.rank) {
      return new DistError('E_INTERNAL', `rank ${this.rank} addressed peer ${peer}; expected an integer in [0, ${this.worldSize}) other than itself.`, { rank: this.rank, peer })
    }
    return undefined
  }

  private closedError(): DistError {
    return new DistError('E_CLOSED', `rank ${this.rank}'s transport is closed.`, { rank: this.rank })
  }
}

/**
 * A fresh directory only this user can enter (mkdtemp makes it 0700) for the ipc socket
 * file: the kernel keeps other users' processes from connecting (Note [Job security]).
 * Abstract sockets (`ipc://@name`) have no permissions: any process of the host may connect.
 * Its name carries the host digest, so a peer can tell from the address alone that it may
 * use it (endpointsFromWire). Undefined when the path would be too long for a unix socket.
 * A killed worker's directory is swept by the next one (security/private-dir.ts).
 */
function privateIpcDirectory(hostId: string): string | undefined {
  const dir = makePrivateDirectory(`ringtrain-${hostIdDigest(hostId)}-`)
  if (join(dir, 'data.sock').length <= 100) return dir
  rmSync(dir, { recursive: true, force: true })
  return undefined
}

function checkWorld(rank: number, worldSize: number): void {
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new ConfigError(`worldSize (${worldSize}) must be a positive integer.`)
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new ConfigError(`rank (${rank}) must be an integer in [0, ${worldSize}).`)
}

export type { BoundZmqTransport, ZmqEndpoints, ZmqTransportOptions } from './zeromq-options.js'
