/**
 * The machines of a `launch --hosts` / `--hostfile` job and how many workers each runs, as
 * horovodrun -H and mpirun hostfiles write them:
 *
 *   --hosts h1:2,h2:2,h3          (a host without :N has one slot)
 *   --hostfile FILE               one host a line: `h1 slots=2` or `h1:2` or `h1`; # comments
 *
 * A host is a name, an IPv4 address or an IPv6 one in brackets (`[fd00::2]:2`), optionally
 * with `user@` for ssh. `localhost`, this machine's name and its own addresses run local
 * workers, as `launch -n` does; any other host gets its workers over ssh.
 */
import { readFileSync } from 'node:fs'
import { hostname, networkInterfaces } from 'node:os'
import { ConfigError } from '@ringtrain/core'

export interface HostSlots {
  /** As written, `user@` included: what ssh is given. */
  host: string
  slots: number
}

/** One worker of the job: the host it runs on and its rank among that host's workers. */
export interface Placement {
  host: string
  localRank: number
  /** True for this machine (a local worker, no ssh). */
  local: boolean
}

const HOST = /^(?:[A-Za-z0-9._-]+@)?(?:[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$/

/** `--hosts h1:2,h2:2`: hosts in order with their slots. */
export function parseHostList(spec: string): HostSlots[] {
  const entries = spec.split(',').map((e) => e.trim())
  const hosts = entries.map((entry, i) => {
    const where = `--hosts entry ${i + 1} ('${entry}')`
    if (entry === '') throw new ConfigError(`${where} is empty: expected HOST or HOST:SLOTS between the commas, e.g. --hosts h1:2,h2:2.`, { flag: 'hosts', entry: i + 1, expected: 'HOST[:SLOTS]', got: spec })
    const match = /^(.*?)(?::([^:\]]*))?$/.exec(entry)!
    return { host: checkHost(match[1]!, where, 'hosts'), slots: match[2] === undefined ? 1 : checkSlots(match[2], where, 'hosts') }
  })
  return withoutDuplicates(hosts, '--hosts', 'hosts')
}

/** A hostfile's text (`where`: its path, for messages). */
export function parseHostfileText(text: string, where: string): HostSlots[] {
  const hosts: HostSlots[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim()
    if (line === '') return
    const at = `${where} line ${i + 1} ('${line}')`
    const [first, ...rest] = line.split(/\s+/)
    const colon = /^(.*?)(?::([^:\]]*))?$/.exec(first!)!
    let slots = colon[2] === undefined ? undefined : checkSlots(colon[2], at, 'hostfile')
    for (const word of rest) {
      const setting = /^slots=(.*)$/.exec(word)
      if (setting === null) throw new ConfigError(`${at}: expected 'HOST slots=N', 'HOST:N' or 'HOST'; got '${word}' after the host.`, { flag: 'hostfile', path: where, line: i + 1, expected: 'slots=N', got: word })
      if (slots !== undefined) throw new ConfigError(`${at} gives the slots twice: write 'HOST slots=N' or 'HOST:N'.`, { flag: 'hostfile', path: where, line: i + 1, expected: 'one slot count', got: line })
      slots = checkSlots(setting[1]!, at, 'hostfile')
    }
    hosts.push({ host: checkHost(colon[1]!, at, 'hostfile'), slots: slots ?? 1 })
  })
  if (hosts.length === 0) throw new ConfigError(`${where} names no host: expected lines like 'h1 slots=2' or 'h1:2'.`, { flag: 'hostfile', path: where, expected: 'at least one host', got: 'none' })
  return withoutDuplicates(hosts, where, 'hostfile')
}

export function readHostfile(path: string): HostSlots[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (cause) {
    throw new ConfigError(`could not read the hostfile ${path}: ${(cause as Error).message}.`, { flag: 'hostfile', path, expected: 'a readable file', got: (cause as NodeJS.ErrnoException).code ?? 'an error' }, { cause })
  }
  return parseHostfileText(text, `hostfile ${path}`)
}

/**
 * Where each of `workers` workers runs: the hosts' slots in order, as mpirun fills them
 * (`workers` may be fewer than the slots, not more).
 */
export function placeWorkers(hosts: HostSlots[], workers: number, isLocal: (host: string) => boolean = isThisMachine): Placement[] {
  const total = hosts.reduce((sum, h) => sum + h.slots, 0)
  if (workers > total) throw new ConfigError(`-n ${workers} is more workers than the hosts have slots (${total}: ${hosts.map((h) => `${h.host}:${h.slots}`).join(',')}).`, { flag: 'workers', expected: `≤ ${total}`, got: workers })
  const placements: Placement[] = []
  for (const { host, slots } of hosts) {
    for (let localRank = 0; localRank < slots && placements.length < workers; localRank++) placements.push({ host, localRank, local: isLocal(host) })
  }
  return placements
}

/** The address part of a host: without `user@` and IPv6 brackets. */
export function addressOf(host: string): string {
  return host.replace(/^[^@]*@/, '').replace(/^\[(.*)\]$/, '$1')
}

/** localhost, a loopback address, this machine's name or one of its own addresses. */
export function isThisMachine(host: string): boolean {
  const address = addressOf(host).toLowerCase()
  if (address === 'localhost' || address === '::1' || /^127(\.\d{1,3}){3}$/.test(address)) return true
  const name = hostname().toLowerCase()
  if (address === name || address === name.split('.')[0]) return true
  return Object.values(networkInterfaces()).some((list) => (list ?? []).some((a) => a.address.toLowerCase() === address))
}

function checkHost(host: string, where: string, flag: string): string {
  if (!HOST.test(host)) throw new ConfigError(`${where}: expected a host name or address (optionally user@, IPv6 in brackets), got '${host}'.`, { flag, expected: 'HOST', got: host })
  return host
}

function checkSlots(text: string, where: string, flag: string): number {
  const slots = Number(text)
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(slots) || slots < 1) throw new ConfigError(`${where}: expected the number of slots (workers on that host) as an integer ≥ 1, got '${text}'.`, { flag, expected: 'an integer ≥ 1', got: text })
  return slots
}

function withoutDuplicates(hosts: HostSlots[], where: string, flag: string): HostSlots[] {
  const seen = new Set<string>()
  for (const { host } of hosts) {
    if (seen.has(host)) throw new ConfigError(`${where} names ${host} twice: give each host once, with all its slots.`, { flag, expected: 'each host once', got: host })
    seen.add(host)
  }
  return hosts
}
