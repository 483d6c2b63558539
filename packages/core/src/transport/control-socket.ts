/**
 * Sockets of the control plane: the coordinator's ROUTER (`openControlServer`) and each
 * worker's DEALER (`connectControlClient`). They carry msgpack control messages
 * (protocol/messages.ts), validate every one at the edge (protocol/validate.ts), and hand
 * the receiver either a message or a typed error, never a throw from the receive loop.
 *
 * This is the second file allowed to import 'zeromq' (after transport/zeromq.ts), and it
 * does so lazily inside the factories, so importing @ringtrain/core never loads the addon.
 * Sends go through a SendQueue: zeromq.js allows one pending `send()` per socket (EBUSY otherwise).
 * A worker's sends are bounded: a DEALER blocks once 1000 messages wait for a coordinator
 * that is gone, so each send gives up after `sendTimeoutMs`, and heartbeats and metrics are
 * dropped rather than queued while the queue is backed up.
 */
import { CollectiveTimeoutError, DistError, FrameError } from '../errors.js'
import { encode } from '../protocol/codec.js'
import { messageTypeName, type ControlMessage } from '../protocol/messages.js'
import { decodeControlMessage, MAX_CONTROL_MESSAGE_BYTES, type ValidateExpectation } from '../protocol/validate.js'
import { SendQueue } from './send-queue.js'
import { RateLimitedLog } from '../logging/rate-limited-log.js'
import { clientSecurityOptions, serverSecurityOptions, zapPolicyFor, type JobSecurity } from '../security/socket-security.js'
import { closeZapHandler, registerZapPolicy } from '../security/zap.js'

/** What a socket hands its owner: a valid message, or the typed error of an invalid one. */
export type ControlReceipt =
  | { kind: 'message'; from: string; message: ControlMessage }
  | { kind: 'invalid'; from: string; error: FrameError }

export interface ControlServer {
  /** The resolved address, e.g. tcp://127.0.0.1:41235 when bound to port 0. */
  readonly endpoint: string
  /** Queues `message` for the worker whose DEALER identity is `to`; a gone worker drops it silently (ZMQ_ROUTER_MANDATORY off). */
  send(to: string, message: ControlMessage): Promise<void>
  /** Flushes queued sends (up to `lingerMs`) and closes the socket. */
  close(options?: { lingerMs?: number }): Promise<void>
}

export interface ControlClient {
  /**
   * Queues `message` for the coordinator. Resolves once ZeroMQ took it, or at once when it is
   * `droppable` (a heartbeat, metrics) and `MAX_QUEUED_CONTROL_SENDS` sends already wait.
   * Rejects with E_TIMEOUT when ZeroMQ could not take it within sendTimeoutMs (the coordinator
   * is gone or not reading), or E_CLOSED when the socket closed first.
   */
  send(message: ControlMessage, options?: { droppable?: boolean }): Promise<void>
  close(options?: { lingerMs?: number }): Promise<void>
}

/** How long a worker's send may wait for room in the DEALER's queue (1000 messages) before it fails. */
export const DEFAULT_CONTROL_SEND_TIMEOUT_MS = 2000
/** Sends waiting in a worker's queue beyond which droppable messages are dropped. */
export const MAX_QUEUED_CONTROL_SENDS = 16

export interface ControlSocketOptions {
  /** Messages of another job are refused with E_JOB_MISMATCH; undefined accepts any job. */
  jobId?: string
  /**
   * The job's key, or INSECURE (Note [Job security], security/socket-security.ts): a server
   * accepts only clients holding the key, a client connects only to a server holding it.
   */
  security: JobSecurity
  /**
   * A client only: the coordinator refused this client's handshake (another job's key), or
   * the handshake failed (one side has a key, the other none). Without it the client would
   * wait out its join timeout in silence.
   */
  onRefused?: (reason: string) => void
  onReceive(receipt: ControlReceipt): void
  /** Where socket-level trouble is reported in whole sentences; console.error by default. */
  log?: (line: string) => void
  /** A worker's DEALER only: how long one send may wait for room (DEFAULT_CONTROL_SEND_TIMEOUT_MS). */
  sendTimeoutMs?: number
}

let sharedContext: Promise<import('zeromq').Context> | undefined

/**
 * The control sockets' own context, not blocky: `close()` already flushes what matters
 * (closeAfterFlush), so process exit never waits on ZeroMQ for queued control messages.
 */
function controlContext(): Promise<import('zeromq').Context> {
  sharedContext ??= import('zeromq').then((zmq) => new zmq.Context({ blocky: false }))
  return sharedContext
}

/** Messages a control socket queues per connection, each way, before ZeroMQ stops reading or drops. */
const CONTROL_HIGH_WATER_MARK = 1000

/**
 * Binds a ROUTER at `bind` (tcp://127.0.0.1:0 picks a free port), in a context of its own
 * whose ZAP handler admits only holders of the job's key (security/zap.ts).
 */
export async function openControlServer(bind: string, options: ControlSocketOptions): Promise<ControlServer> {
  const zmq = await import('zeromq')
  const context = new zmq.Context({ blocky: false })
  const log = options.log ?? console.error
  const link = bind.startsWith('ipc://') ? 'ipc' : 'tcp'
  const policy = zapPolicyFor(options.security, link, (line) => log(`The coordinator ${line}`))
  const zap = policy === undefined ? undefined : await registerZapPolicy(zmq, context, policy)
  const socket = new zmq.Router({
    context,
    linger: 0,
    maxMessageSize: MAX_CONTROL_MESSAGE_BYTES + 1024,
    receiveHighWaterMark: CONTROL_HIGH_WATER_MARK,
    sendHighWaterMark: CONTROL_HIGH_WATER_MARK,
    ...serverSecurityOptions(options.security, link, zap?.domain),
  })
  const closeContext = () => {
    zap?.unregister()
    closeZapHandler(context)
  }
  try {
    await socket.bind(bind)
  } catch (error) {
    // Nothing stays open when the endpoint cannot be bound (in use, not a local address).
    socket.close()
    closeContext()
    throw error
  }
  const endpoint = socket.lastEndpoint ?? bind
  const sends = new SendQueue<Uint8Array[]>((frames) => socket.send(frames))
  void receiveLoop(socket, `the coordinator at ${endpoint}`, options, (frames) => {
    const from = frames[0]?.toString('hex') ?? ''
    return { from, payloads: frames.slice(1), sender: `worker ${from.slice(0, 8)}` }
  })
  return {
    endpoint,
    // A ROUTER never blocks: a message for a gone or slow worker is dropped by ZeroMQ.
    send: (to, message) => sends.push([Buffer.from(to, 'hex'), encode(message)]).catch((error: Error) => {
      log(`A ${messageTypeName(message.type)} for worker ${to.slice(0, 8)} could not be sent and was dropped: ${error.message}`)
    }),
    close: async (closeOptions) => {
      await closeAfterFlush(sends, socket, closeOptions?.lingerMs ?? 1000)
      closeContext()
    },
  }
}

/** Connects a DEALER to the coordinator at `endpoint`. `receiver` names this process in error messages. */
export async function connectControlClient(endpoint: string, receiver: () => string, options: ControlSocketOptions): Promise<ControlClient> {
  const zmq = await import('zeromq')
  const sendTimeoutMs = options.sendTimeoutMs ?? DEFAULT_CONTROL_SEND_TIMEOUT_MS
  const socket = new zmq.Dealer({
    context: await controlContext(),
    linger: 0,
    sendTimeout: sendTimeoutMs,
    maxMessageSize: MAX_CONTROL_MESSAGE_BYTES + 1024,
    receiveHighWaterMark: CONTROL_HIGH_WATER_MARK,
    sendHighWaterMark: CONTROL_HIGH_WATER_MARK,
    ...clientSecurityOptions(options.security, 'tcp'),
  })
  const log = options.log ?? console.error
  watchHandshakes(socket, endpoint, options)
  socket.connect(endpoint)
  const sends = new SendQueue<ControlMessage>(async (message) => {
    try {
      await socket.send(encode(message))
    } catch (error) {
      const name = messageTypeName(message.type)
      if ((error as { code?: string }).code === 'EAGAIN' && !socket.closed) {
        throw new CollectiveTimeoutError('E_TIMEOUT', `${receiver()} could not send a ${name} to the coordinator at ${endpoint} within ${sendTimeoutMs} ms: 1000 earlier messages still wait for it. Is the coordinator still running?`, { expected: `room in the send queue within ${sendTimeoutMs} ms`, got: 'a full queue', timeoutMs: sendTimeoutMs }, { cause: error })
      }
      throw new DistError('E_CLOSED', `${receiver()} could not send a ${name} to the coordinator at ${endpoint}: ${(error as Error).message}.`, {}, { cause: error })
    }
  }, {
    maxQueued: MAX_QUEUED_CONTROL_SENDS,
    onDrops: (dropped) => {
      if (dropped === 1) log(`${MAX_QUEUED_CONTROL_SENDS} control messages wait to be sent to the coordinator at ${endpoint}; heartbeats and metrics are dropped until they drain (is the coordinator still running?).`)
      else log(`The control messages to the coordinator at ${endpoint} drained; ${-dropped} heartbeats and metrics were dropped meanwhile.`)
    },
  })
  void receiveLoop(socket, receiver, options, (frames) => ({ from: endpoint, payloads: frames, sender: `the coordinator at ${endpoint}` }))
  return {
    send: (message, sendOptions) => sends.push(message, { droppable: sendOptions?.droppable ?? false }),
    close: (closeOptions) => closeAfterFlush(sends, socket, closeOptions?.lingerMs ?? 1000),
  }
}

/**
 * Tells the owner when the coordinator refused this client (ZAP said no: another job's
 * key), and logs, rate-limited, handshakes that failed for other reasons (no key on one
 * side, or a server that does not hold the job's key).
 */
function watchHandshakes(socket: import('zeromq').Dealer, endpoint: string, options: ControlSocketOptions): void {
  const log = new RateLimitedLog(options.log ?? console.error)
  socket.events.on('handshake:error:auth', (event) => {
    const reason = `the coordinator at ${endpoint} refused this worker's key (ZAP status ${event.error.status}): its --secret-file is not the coordinator's`
    log.note('auth', `${reason}.`)
    options.onRefused?.(reason)
  })
  // Between ringtrain processes a failed handshake is a mismatch of keys or of --insecure,
  // which retrying cannot cure. A server that cannot open our CURVE HELLO (another key)
  // just closes the connection ('other'); one that expects another mechanism says so ('protocol').
  const mismatch = options.security.mode === 'key'
    ? 'the coordinator holds another job\'s key, or runs without one (--insecure)'
    : 'the coordinator requires a job key; start this worker with its --secret-file'
  for (const kind of ['handshake:error:protocol', 'handshake:error:other'] as const) {
    socket.events.on(kind, (event) => {
      const reason = `the handshake with the coordinator at ${endpoint} failed (${event.error.message}): ${mismatch}`
      log.note(kind, `${reason}.`)
      options.onRefused?.(reason)
    })
  }
}

interface ReceivingSocket extends AsyncIterable<Buffer[]> { readonly closed: boolean }
type Split = (frames: Buffer[]) => { from: string; payloads: Buffer[]; sender: string }

async function receiveLoop(socket: ReceivingSocket, receiver: string | (() => string), options: ControlSocketOptions, split: Split): Promise<void> {
  const log = options.log ?? console.error
  try {
    for await (const frames of socket) {
      const { from, payloads, sender } = split(frames)
      const who = typeof receiver === 'string' ? receiver : receiver()
      const receipt = check(payloads, { receiver: who, sender, jobId: options.jobId }, from)
      try {
        options.onReceive(receipt)
      } catch (error) {
        log(`The owner of the control socket of ${who} failed on a ${receipt.kind} message: ${(error as Error).stack ?? String(error)}`)
      }
    }
  } catch (error) {
    if (!socket.closed) log(`The control socket of ${typeof receiver === 'string' ? receiver : receiver()} stopped receiving: ${(error as Error).message}`)
  }
}

function check(payloads: Buffer[], expect: ValidateExpectation & { jobId: string | undefined }, from: string): ControlReceipt {
  const { receiver, sender } = expect
  try {
    if (payloads.length !== 1) {
      throw new FrameError('E_BAD_FRAME', `${receiver} got a message of ${payloads.length} frames from ${sender}; expected 1 frame (a msgpack control message). Dropped it.`, { receiver, sender, expected: 1, got: payloads.length })
    }
    return { kind: 'message', from, message: decodeControlMessage(payloads[0]!, expect) }
  } catch (error) {
    const frameError = error instanceof FrameError ? error : new FrameError('E_BAD_FRAME', `${receiver} could not read a message from ${sender}: ${(error as Error).message}`, { receiver, sender }, { cause: error })
    return { kind: 'invalid', from, error: frameError }
  }
}

/** Lets queued sends reach ZeroMQ (up to `lingerMs`), then closes the socket with that linger. */
async function closeAfterFlush(sends: Pick<SendQueue<unknown>, 'closeAfterFlush'>, socket: { close(): void; linger: number; readonly closed: boolean }, lingerMs: number): Promise<void> {
  if (socket.closed) return
  await sends.closeAfterFlush(lingerMs)
  socket.linger = lingerMs
  socket.close()
}
