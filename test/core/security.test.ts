/**
 * The pieces of job security that need no running job: Z85, key files, the rate-limited
 * log, private directories, and a ZAP handler that admits the job's key only.
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DistError, generateJobKey, RateLimitedLog, readJobKeyFile, writeJobKeyFile, writePrivateKeyFile } from '@ringtrain/core'
import { afterEach, describe, expect, test } from 'vitest'
import { makePrivateDirectory, publicKeyOf, z85Decode, z85Encode } from '@ringtrain/core/unstable-internals-do-not-import'

const cleanup: string[] = []
afterEach(() => {
  for (const dir of cleanup.splice(0)) rmSync(dir, { recursive: true, force: true })
})
function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringtrain-security-test-'))
  cleanup.push(dir)
  return dir
}

describe('Z85', () => {
  test('matches the test vector of ZeroMQ RFC 32 and round-trips', () => {
    const bytes = new Uint8Array([0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b])
    expect(z85Encode(bytes)).toBe('HelloWorld')
    expect(z85Decode('HelloWorld')).toEqual(bytes)
    expect(z85Decode('Hello')).toBeDefined()
    expect(z85Decode('Hell')).toBeUndefined()
    expect(z85Decode('Hell~')).toBeUndefined()
  })
})

describe('job keys', () => {
  test('a generated key pair is consistent, and keygen files are 0600 and read back', () => {
    const key = generateJobKey()
    expect(key.publicKey).toHaveLength(40)
    expect(publicKeyOf(key.secretKey)).toBe(key.publicKey)
    const path = join(scratch(), 'job.key')
    writeJobKeyFile(path, key)
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(readJobKeyFile(path)).toEqual(key)
  })

  test('refuses files others can read, other formats and mismatched pairs, naming the file, expected and got', () => {
    const dir = scratch()
    const open = join(dir, 'open.key')
    writeJobKeyFile(open)
    chmodSync(open, 0o640)
    expect(() => readJobKeyFile(open)).toThrow(/can be read by other users \(mode 0640\).*chmod 600/)

    const cases: Array<[string, RegExp]> = [
      ['not json', /bytes that are not JSON/],
      ['{"format":"other","version":1}', /format "other"/],
      [JSON.stringify({ format: 'ringtrain-job-key', version: 2 }), /version 2/],
      [JSON.stringify({ format: 'ringtrain-job-key', version: 1, publicKey: 'short', secretKey: generateJobKey().secretKey }), /publicKey that is not 40 characters of Z85/],
      [JSON.stringify({ format: 'ringtrain-job-key', version: 1, publicKey: generateJobKey().publicKey, secretKey: generateJobKey().secretKey }), /publicKey that does not belong to its secretKey/],
    ]
    for (const [text, message] of cases) {
      const path = join(dir, `${cases.findIndex((c) => c[0] === text)}.key`)
      writeFileSync(path, text, { mode: 0o600 })
      let error: unknown
      try {
        readJobKeyFile(path)
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(DistError)
      expect((error as DistError).code).toBe('E_CONFIG')
      expect((error as DistError).message).toMatch(message)
      expect((error as DistError).message).toContain(path)
    }
    expect(() => readJobKeyFile(join(dir, 'missing.key'))).toThrow(/could not read the job key file .*missing\.key.*ringtrain keygen/)
  })

  test('the launcher\'s key file sits in a 0700 directory that remove() deletes', () => {
    const file = writePrivateKeyFile(generateJobKey())
    const dir = join(file.path, '..')
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    expect(statSync(file.path).mode & 0o777).toBe(0o600)
    file.remove()
    expect(existsSync(dir)).toBe(false)
  })
})

describe('private directories', () => {
  test('a new one sweeps those of the same prefix whose owner died, and keeps live and foreign ones', () => {
    const prefix = `ringtrain-sweep-test-${process.pid}-`
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString()
    const stale = join(tmpdir(), `${prefix}stale`)
    const foreign = join(tmpdir(), `${prefix}foreign`)
    mkdirSync(stale)
    mkdirSync(foreign)
    cleanup.push(stale, foreign)
    writeFileSync(join(stale, 'owner.pid'), dead)
    const live = makePrivateDirectory(prefix)
    cleanup.push(live)
    expect(readFileSync(join(live, 'owner.pid'), 'utf8').trim()).toBe(String(process.pid))
    expect(existsSync(stale)).toBe(false)
    expect(existsSync(foreign)).toBe(true)
    const second = makePrivateDirectory(prefix)
    cleanup.push(second)
    expect(existsSync(live)).toBe(true)
  })
})

describe('RateLimitedLog', () => {
  test('says each key once per interval and reports how many it held back', () => {
    let now = 0
    const lines: string[] = []
    const log = new RateLimitedLog((line) => lines.push(line), { intervalMs: 10_000, now: () => now })
    for (let i = 0; i < 10_000; i++) log.note('flood', 'bad frame from x')
    log.note('other', 'refused y')
    expect(lines).toEqual(['bad frame from x', 'refused y'])
    now = 10_000
    log.note('flood', 'bad frame from x')
    expect(lines[2]).toBe('bad frame from x (and 9999 more like it in the last 10 s)')
    log.note('flood', 'bad frame from x')
    log.flush()
    expect(lines[3]).toBe('bad frame from x (1 more like it in the last 0.0 s)')
    expect(lines).toHaveLength(4)
  })

  test('tracks at most maxKeys keys, so many senders cannot grow it without bound', () => {
    const lines: string[] = []
    const log = new RateLimitedLog((line) => lines.push(line), { maxKeys: 10, now: () => 0 })
    for (let i = 0; i < 1000; i++) {
      log.note(`sender ${i}`, `from ${i}`)
      log.note(`sender ${i}`, `from ${i}`)
    }
    // One line per new sender, one per evicted sender's held-back count: bounded by the senders, not the messages.
    expect(lines.length).toBeLessThanOrEqual(2000)
    expect((log as unknown as { entries: Map<string, unknown> }).entries.size).toBeLessThanOrEqual(10)
  })
})

/** The part of zeromq.js's Dealer these tests use. */
interface RawDealer {
  connect(address: string): void
  send(frames: (Uint8Array | string)[]): Promise<void>
  receive(): Promise<Buffer[]>
  close(): void
  events: { on(event: 'handshake', listener: () => void): void }
}

describe('the data sockets of a keyed transport', () => {
  test('only clients holding the job key complete a handshake, on tcp and on ipc; the two ranks still talk', async () => {
    // zeromq is a dependency of @ringtrain/core, not of the tests: resolve it from there.
    const { createRequire } = await import('node:module')
    const zmq = createRequire(createRequire(import.meta.url).resolve('@ringtrain/core'))('zeromq') as { Dealer: new (o: object) => RawDealer }
    const { createZmqTransport, encode } = await import('@ringtrain/core')
    const { localPassword } = await import('@ringtrain/core/unstable-internals-do-not-import')
    const key = generateJobKey()
    const security = { mode: 'key' as const, key }
    const warnings: string[] = []
    let onWarning = () => {}
    const warn = (line: string) => {
      warnings.push(line)
      onWarning()
    }
    const ranks = await Promise.all([0, 1].map((rank) => createZmqTransport({ rank, worldSize: 2, security, warn })))
    const attackers: RawDealer[] = []
    try {
      const other = generateJobKey()
      const handshakes: string[] = []
      const received: unknown[] = []
      const attack = (address: string, options: Record<string, unknown>, name: string) => {
        const dealer = new zmq.Dealer({ routingId: '1', linger: 0, ...options })
        dealer.events.on('handshake', () => handshakes.push(name))
        dealer.connect(address)
        void dealer.send([encode([4, 1, 0, 0, 0, 1, 0, 0, 4]), Buffer.alloc(4)]).catch(() => undefined)
        void dealer.receive().then((m) => received.push(m), () => undefined)
        attackers.push(dealer)
      }
      const { tcp, ipc } = ranks[0]!.endpoints
      attack(tcp, {}, 'tcp without a key')
      attack(tcp, { curveServerKey: key.publicKey, curvePublicKey: other.publicKey, curveSecretKey: other.secretKey }, 'tcp with a random key pair')
      attack(ipc!, {}, 'ipc without a key')
      attack(ipc!, { plainUsername: 'ringtrain', plainPassword: localPassword(other) }, 'ipc with another job\'s password')
      attack(ipc!, { curveServerKey: key.publicKey, curvePublicKey: other.publicKey, curveSecretKey: other.secretKey }, 'ipc with a random key pair')

      // The real ranks connect after the attackers, who claimed routing id "1" first.
      await Promise.all(ranks.map((t) => t.connect(ranks.map((r) => r.endpoints))))
      const tag = { round: 0, step: 0, op: 0, collective: 1, ringStep: 0, segment: 0 }
      await ranks[1]!.send(0, tag, new Uint8Array([1, 2, 3, 4]))
      expect([...(await ranks[0]!.recv(1, tag, { timeoutMs: 10_000 }))]).toEqual([1, 2, 3, 4])
      // Wait for a refusal of both kinds to be logged.
      const logged = () => warnings.some((w) => w.includes('CURVE key is not this job\'s key')) && warnings.some((w) => w.includes('password does not come from this job\'s key'))
      await new Promise<void>((resolve) => {
        onWarning = () => { if (logged()) resolve() }
        onWarning()
      })
      expect(handshakes).toEqual([])
      expect(received).toEqual([])
      expect(warnings.join('\n')).toMatch(/the data socket refused a connection from pid \d+ \(uid \d+\) on this machine: /)
    } finally {
      for (const dealer of attackers) dealer.close()
      await Promise.all(ranks.map((t) => t.close()))
    }
  }, 30_000)
})

describe('a timeout between ranks that hold different keys', () => {
  test('says the handshake failed, instead of only blaming the peer that sent nothing', async () => {
    const { createZmqTransport, DistError: Err } = await import('@ringtrain/core')
    const quiet = () => {}
    // ipc: false, so the two ranks meet over tcp, where CURVE checks the keys.
    const ranks = await Promise.all([0, 1].map((rank) => createZmqTransport({ rank, worldSize: 2, ipc: false, security: { mode: 'key', key: generateJobKey() }, warn: quiet })))
    try {
      await Promise.all(ranks.map((t) => t.connect(ranks.map((r) => r.endpoints))))
      const tag = { round: 0, step: 0, op: 0, collective: 1, ringStep: 0, segment: 0 }
      void ranks[1]!.send(0, tag, new Uint8Array(4)).catch(() => undefined)
      // Long enough for a handshake to fail many times over (it takes milliseconds).
      const error = await ranks[0]!.recv(1, tag, { timeoutMs: 3_000 }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(Err)
      expect((error as DistError).code).toBe('E_TIMEOUT')
      expect((error as DistError).message).toMatch(/the handshake of rank 0 with rank 1 at tcp:\/\/127\.0\.0\.1:\d+ failed .*: the two ranks hold different job keys, or one runs without a key/)
    } finally {
      await Promise.all(ranks.map((t) => t.close()))
    }
  }, 30_000)
})
