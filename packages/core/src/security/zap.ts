/**
 * ZAP (ZeroMQ RFC 27): who may complete a handshake with our server sockets.
 *
 * CURVE alone authenticates only the server: any client that knows the server's public key
 * completes the handshake with a key pair of its own. libzmq asks the context's ZAP handler
 * (a REP socket at inproc://zeromq.zap.01) about every client, and this one accepts only
 * the credentials of the job that owns the socket: its CURVE public key, or on same-host
 * ipc sockets the PLAIN password derived from it (job-key.ts). Each server socket names
 * its policy by its ZAP domain; an unknown domain, or any other mechanism, is refused.
 *
 * Sockets are created with ZMQ_ZAP_ENFORCE_DOMAIN, so a missing handler fails handshakes
 * rather than letting everyone in. The handler runs on the Node event loop: a handshake
 * waits while that loop is busy (a long step), which only delays (re)connections.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import type * as Zmq from 'zeromq'
import { RateLimitedLog } from '../logging/rate-limited-log.js'
import { z85Decode } from './z85.js'

export const ZAP_ENDPOINT = 'inproc://zeromq.zap.01'

export interface ZapPolicy {
  /** Public key (Z85) a CURVE client must present. */
  curvePublicKey?: string
  /** Password a PLAIN client must present. */
  plainPassword?: string
  /** Called, rate-limited per address and reason, for every refused client. */
  onRefused(line: string): void
}

export interface ZapRegistration {
  readonly domain: string
  /** Refused handshakes so far, with the last reason and address. */
  readonly refused: { count: number; last?: string }
  unregister(): void
}

interface Handler {
  socket: Zmq.Reply
  policies: Map<string, { policy: ZapPolicy; refused: ZapRegistration['refused']; log: RateLimitedLog }>
}

const handlers = new WeakMap<Zmq.Context, Handler>()

/**
 * Registers `policy` under a fresh ZAP domain of `context`, starting the context's
 * handler on first use. Give the returned domain to the server socket (`zapDomain`).
 */
export async function registerZapPolicy(zmq: typeof Zmq, context: Zmq.Context, policy: ZapPolicy): Promise<ZapRegistration> {
  let handler = handlers.get(context)
  if (handler === undefined) {
    const socket = new zmq.Reply({ context, linger: 0 })
    await socket.bind(ZAP_ENDPOINT)
    handler = { socket, policies: new Map() }
    handlers.set(context, handler)
    void serve(handler)
  }
  const domain = `ringtrain-${randomBytes(8).toString('hex')}`
  const refused: ZapRegistration['refused'] = { count: 0 }
  handler.policies.set(domain, { policy, refused, log: new RateLimitedLog((line) => policy.onRefused(line)) })
  const owner = handler
  return {
    domain,
    refused,
    unregister: () => {
      owner.policies.get(domain)?.log.flush()
      owner.policies.delete(domain)
    },
  }
}

async function serve(handler: Handler): Promise<void> {
  try {
    for await (const request of handler.socket) {
      // [version, requestId, domain, address, identity, mechanism, ...credentials]
      const [version, requestId, domainFrame, addressFrame, , mechanismFrame, ...credentials] = request
      const domain = domainFrame?.toString() ?? ''
      const mechanism = mechanismFrame?.toString() ?? ''
      const entry = handler.policies.get(domain)
      const reason = entry === undefined ? `no ringtrain socket has ZAP domain ${JSON.stringify(domain)}` : check(entry.policy, mechanism, credentials)
      if (reason !== undefined && entry !== undefined) {
        const address = addressFrame?.toString() || 'an unknown address'
        entry.refused.count++
        entry.refused.last = `${address}: ${reason}`
        entry.log.note(`${address}|${reason}`, `refused a connection from ${describeAddress(address)}: ${reason}.`)
      }
      const ok = reason === undefined
      await handler.socket.send([version ?? '1.0', requestId ?? '', ok ? '200' : '400', ok ? 'OK' : 'refused', '', ''])
    }
  } catch {
    // The context's sockets are closing: nothing left to authenticate.
  }
}

function check(policy: ZapPolicy, mechanism: string, credentials: Buffer[]): string | undefined {
  if (mechanism === 'CURVE' && policy.curvePublicKey !== undefined) {
    const expected = Buffer.from(z85Decode(policy.curvePublicKey)!)
    const got = credentials[0]
    return got !== undefined && got.length === expected.length && timingSafeEqual(got, expected) ? undefined : 'its CURVE key is not this job\'s key (a --secret-file from another job, or none)'
  }
  if (mechanism === 'PLAIN' && policy.plainPassword !== undefined) {
    const expected = Buffer.from(policy.plainPassword)
    const got = credentials[1]
    return got !== undefined && got.length === expected.length && timingSafeEqual(got, expected) ? undefined : 'its password does not come from this job\'s key'
  }
  const allowed = [policy.curvePublicKey !== undefined ? 'CURVE' : '', policy.plainPassword !== undefined ? 'PLAIN' : ''].filter(Boolean).join(' or ')
  return `it used the ${mechanism || 'NULL'} mechanism; this socket accepts ${allowed || 'nobody'}`
}

/** `localhost:PID:UID:GID` is how libzmq names an ipc peer. */
function describeAddress(address: string): string {
  const ipc = /^localhost:(\d+):(\d+):(\d+)$/.exec(address)
  return ipc ? `pid ${ipc[1]} (uid ${ipc[2]}) on this machine` : address
}

/** Closes the handler of `context` (when its sockets are all closed). */
export function closeZapHandler(context: Zmq.Context): void {
  const handler = handlers.get(context)
  if (handler === undefined) return
  handlers.delete(context)
  handler.socket.close()
}
