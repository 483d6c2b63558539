/**
 * How a job's sockets prove who they are (Note [Job security]).
 *
 * Note [Job security]
 * With a job key (job-key.ts), every server socket of the job (the coordinator's ROUTER,
 * each worker's data ROUTERs) accepts only clients that prove they hold the key, checked
 * by the context's ZAP handler (zap.ts):
 *   - tcp: ZeroMQ CURVE. Server and clients use the job's key pair; the ZAP handler
 *     accepts only the job's public key. Traffic is encrypted and authenticated.
 *   - same-host ipc (the ring between workers of one machine): a socket file in a
 *     private directory (0700), and ZeroMQ PLAIN with a password derived from the key. The
 *     kernel keeps other users out of the directory and no one can sniff a unix socket, so
 *     PLAIN authenticates without paying for encryption: CURVE halves what loopback
 *     carries (docs/benchmarks.md). `encryptLocal` uses CURVE there as well.
 * Without a key (`insecure`), sockets use ZeroMQ's NULL mechanism: anyone who reaches a
 * port may join, read or stop the job. The CLI allows that only with --insecure.
 */
import type * as Zmq from 'zeromq'
import { localPassword, type JobKey } from './job-key.js'
import type { ZapPolicy } from './zap.js'

export type JobSecurity =
  | { readonly mode: 'key'; readonly key: JobKey; readonly encryptLocal?: boolean }
  | { readonly mode: 'insecure' }

export const INSECURE: JobSecurity = { mode: 'insecure' }

export type Link = 'tcp' | 'ipc'

type ServerOptions = Partial<Pick<Zmq.SocketOptions<Zmq.Router>, 'curveServer' | 'curveSecretKey' | 'plainServer' | 'zapDomain' | 'zapEnforceDomain'>>
type ClientOptions = Partial<Pick<Zmq.SocketOptions<Zmq.Dealer>, 'curveServerKey' | 'curvePublicKey' | 'curveSecretKey' | 'plainUsername' | 'plainPassword'>>

function usesCurve(security: JobSecurity, link: Link): boolean {
  return security.mode === 'key' && (link === 'tcp' || security.encryptLocal === true)
}

/** The ZAP policy a server socket on `link` registers (undefined when insecure). */
export function zapPolicyFor(security: JobSecurity, link: Link, onRefused: (line: string) => void): ZapPolicy | undefined {
  if (security.mode !== 'key') return undefined
  return usesCurve(security, link) ? { curvePublicKey: security.key.publicKey, onRefused } : { plainPassword: localPassword(security.key), onRefused }
}

/** Options of a server socket bound on `link`; `zapDomain` from its registered policy. */
export function serverSecurityOptions(security: JobSecurity, link: Link, zapDomain: string | undefined): ServerOptions {
  if (security.mode !== 'key') return {}
  const zap = { zapDomain: zapDomain!, zapEnforceDomain: true }
  if (usesCurve(security, link)) return { curveServer: true, curveSecretKey: security.key.secretKey, ...zap }
  return { plainServer: true, ...zap }
}

/** Options of a client socket that connects over `link`. */
export function clientSecurityOptions(security: JobSecurity, link: Link): ClientOptions {
  if (security.mode !== 'key') return {}
  const { key } = security
  if (usesCurve(security, link)) return { curveServerKey: key.publicKey, curvePublicKey: key.publicKey, curveSecretKey: key.secretKey }
  return { plainUsername: 'ringtrain', plainPassword: localPassword(key) }
}

/** `ipc://…` or `tcp://…` (anything else is treated as tcp: encrypted). */
export function linkOf(endpoint: string): Link {
  return endpoint.startsWith('ipc://') ? 'ipc' : 'tcp'
}
