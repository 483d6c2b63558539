/**
 * A job's key: one CURVE key pair (Curve25519) that every socket of the job uses, as server
 * and as client. Whoever holds the key file is part of the job; whoever does not cannot
 * complete a handshake with any of its sockets (see zap.ts). The job id is only a name.
 *
 * The key file is JSON, written with mode 0600:
 *   {"format":"ringtrain-job-key","version":1,"publicKey":"<Z85>","secretKey":"<Z85>"}
 * Like ssh with its private keys, `readJobKeyFile` refuses a file that others can read.
 */
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto'
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError } from '../errors.js'
import { makePrivateDirectory } from './private-dir.js'
import { z85Decode, z85Encode } from './z85.js'

export interface JobKey {
  /** Z85, 40 characters. */
  readonly publicKey: string
  /** Z85, 40 characters. Never logged, never on a command line or in an environment variable. */
  readonly secretKey: string
}

const FORMAT = 'ringtrain-job-key'
const MAKE_ONE = 'Make one with `ringtrain keygen --out job.key` and copy it (mode 0600) to every machine of the job.'

const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')

export function generateJobKey(): JobKey {
  const { privateKey, publicKey } = generateKeyPairSync('x25519')
  const d = privateKey.export({ format: 'jwk' }).d!
  const x = publicKey.export({ format: 'jwk' }).x!
  return { publicKey: z85Encode(Buffer.from(x, 'base64url')), secretKey: z85Encode(Buffer.from(d, 'base64url')) }
}

/** The Z85 public key of a Z85 secret key, or undefined when it is not one. */
export function publicKeyOf(secretKey: string): string | undefined {
  const secret = z85Decode(secretKey)
  if (secret?.length !== 32) return undefined
  // The raw 32 bytes wrapped as PKCS#8 (RFC 8410): what every Node version imports.
  const der = Buffer.concat([X25519_PKCS8_PREFIX, secret])
  const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  return z85Encode(Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x!, 'base64url'))
}

export function formatJobKey(key: JobKey): string {
  return `${JSON.stringify({ format: FORMAT, version: 1, publicKey: key.publicKey, secretKey: key.secretKey })}\n`
}

/** Writes a new key file with mode 0600; refuses to overwrite one (a running job may use it). */
export function writeJobKeyFile(path: string, key: JobKey = generateJobKey()): JobKey {
  try {
    writeFileSync(path, formatJobKey(key), { mode: 0o600, flag: 'wx' })
  } catch (cause) {
    const exists = (cause as NodeJS.ErrnoException).code === 'EEXIST'
    throw new ConfigError(exists ? `${path} already exists; the key file of a job is never overwritten. Remove it first, or write the new key elsewhere.` : `could not write the key file ${path}: ${(cause as Error).message}.`, { path, expected: 'a new file', got: exists ? 'an existing file' : (cause as Error).message }, { cause })
  }
  return key
}

/** Reads and checks a key file: readable by its owner only, the right format, a matching key pair. */
export function readJobKeyFile(path: string): JobKey {
  let text: string
  let mode: number
  try {
    mode = statSync(path).mode
    text = readFileSync(path, 'utf8')
  } catch (cause) {
    throw new ConfigError(`could not read the job key file ${path}: ${(cause as Error).message}. ${MAKE_ONE}`, { path, expected: 'a readable key file', got: (cause as NodeJS.ErrnoException).code ?? 'an error' }, { cause })
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    const octal = (mode & 0o777).toString(8).padStart(4, '0')
    throw new ConfigError(`the job key file ${path} can be read by other users (mode ${octal}); anyone who reads it can join or stop the job. Run \`chmod 600 ${path}\`.`, { path, expected: 'mode 0600', got: `mode ${octal}` })
  }
  return parseJobKey(text, path)
}

export function parseJobKey(text: string, where: string): JobKey {
  const bad = (got: string): never => {
    throw new ConfigError(`${where} is not a ringtrain job key: expected JSON {"format":"${FORMAT}","version":1,"publicKey":…,"secretKey":…}, got ${got}. ${MAKE_ONE}`, { path: where, expected: FORMAT, got })
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return bad(`${text.length} bytes that are not JSON`)
  }
  if (typeof value !== 'object' || value === null) return bad(typeof value)
  const { format, version, publicKey, secretKey } = value as Record<string, unknown>
  if (format !== FORMAT) return bad(`format ${JSON.stringify(format)}`)
  if (version !== 1) return bad(`version ${JSON.stringify(version)}`)
  if (typeof publicKey !== 'string' || z85Decode(publicKey)?.length !== 32) return bad('a publicKey that is not 40 characters of Z85')
  if (typeof secretKey !== 'string' || z85Decode(secretKey)?.length !== 32) return bad('a secretKey that is not 40 characters of Z85')
  if (publicKeyOf(secretKey) !== publicKey) return bad('a publicKey that does not belong to its secretKey')
  return { publicKey, secretKey }
}

/**
 * A key file for the workers a launcher starts on this machine: in a fresh private
 * directory (mode 0700), the file itself 0600. `remove()` deletes both.
 */
export function writePrivateKeyFile(key: JobKey): { path: string; remove(): void } {
  const dir = makePrivateDirectory('ringtrain-key-')
  const path = join(dir, 'job.key')
  writeJobKeyFile(path, key)
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/**
 * The password of the job's same-host (ipc) sockets when they authenticate without
 * encryption (ZeroMQ PLAIN, see socket-security.ts): derived from the secret key, so it
 * proves the key without revealing it.
 */
export function localPassword(key: JobKey): string {
  return createHmac('sha256', z85Decode(key.secretKey)!).update('ringtrain ipc password v1').digest('base64')
}
