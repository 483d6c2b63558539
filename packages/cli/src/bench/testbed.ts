/**
 * The project's multi-host test bed (scripts/testbed.sh) for `bench … --testbed-hosts N
 * --link-mbit R`: N network namespaces on a bridge, every link shaped to R Mbit/s both ways.
 * The bed gets a name of its own (RINGTRAIN_TESTBED), so a bench never touches a test's bed,
 * and it is taken down whatever happens: at the end, on an error, on Ctrl-C or SIGTERM
 * (`down` also kills whatever still runs inside its hosts).
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { ConfigError } from '@ringtrain/core'

const script = fileURLToPath(new URL('../../../../scripts/testbed.sh', import.meta.url))

export interface Testbed {
  readonly name: string
  readonly hosts: number
  readonly linkMbit: number
  /** Host `i`'s address (1-based), e.g. 10.213.0.1. */
  address(host: number): string
  /** The command prefix that runs a command on host `i`: `[script, 'exec', i]`. */
  on(host: number): string[]
  /** The environment that prefix needs (RINGTRAIN_TESTBED). */
  readonly env: NodeJS.ProcessEnv
  /** Removes the bed; idempotent. */
  down(): void
}

/** `--testbed-hosts` and `--link-mbit`, checked; undefined when neither is given. */
export function testbedOptions(argv: Record<string, unknown>): { hosts: number; linkMbit: number } | undefined {
  const hosts = argv['testbed-hosts']
  const linkMbit = argv['link-mbit']
  if (hosts === undefined) {
    if (linkMbit !== undefined) throw new ConfigError('--link-mbit shapes the links of the test bed: give --testbed-hosts N too.', { flag: 'link-mbit', got: linkMbit })
    return undefined
  }
  if (typeof hosts !== 'number' || !Number.isInteger(hosts) || hosts < 1 || hosts > 50) {
    throw new ConfigError(`--testbed-hosts must be an integer from 1 to 50 (emulated hosts); got ${String(hosts)}.`, { flag: 'testbed-hosts', expected: '1-50', got: hosts })
  }
  if (typeof linkMbit !== 'number' || !Number.isFinite(linkMbit) || linkMbit <= 0 || !Number.isInteger(linkMbit)) {
    throw new ConfigError(`--testbed-hosts needs --link-mbit R, the rate of every link in Mbit/s (a positive integer, e.g. 1000); got ${String(linkMbit)}.`, { flag: 'link-mbit', expected: 'a positive integer', got: linkMbit })
  }
  if (process.getuid?.() !== 0) {
    throw new ConfigError('--testbed-hosts needs root: the test bed is made of network namespaces and traffic shaping (scripts/testbed.sh). Run the bench as root (CI does), or leave --testbed-hosts out to bench on this host.', { flag: 'testbed-hosts', expected: 'uid 0', got: process.getuid?.() })
  }
  return { hosts, linkMbit }
}

const beds = new Set<Testbed>()
let hooked = false

/** Brings up a bed of `hosts` hosts at `linkMbit`, with a name unique to this process. */
export function startTestbed(hosts: number, linkMbit: number): Testbed {
  hookExit()
  // ≤ 6 characters, a letter first (testbed.sh's rule); the pid keeps parallel benches apart.
  const name = `b${(process.pid % 36 ** 5).toString(36)}`
  const env = { ...process.env, RINGTRAIN_TESTBED: name }
  let up = true
  const bed: Testbed = {
    name,
    hosts,
    linkMbit,
    env,
    address: (host) => `10.213.0.${host}`,
    on: (host) => [script, 'exec', String(host)],
    down: () => {
      if (!up) return
      up = false
      beds.delete(bed)
      execFileSync(script, ['down'], { env, stdio: ['ignore', 'ignore', 'inherit'] })
    },
  }
  beds.add(bed)
  try {
    execFileSync(script, ['up', String(hosts), '--rate', `${linkMbit}mbit`], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  } catch (cause) {
    bed.down()
    throw new ConfigError(`could not bring up the test bed (scripts/testbed.sh up ${hosts} --rate ${linkMbit}mbit, RINGTRAIN_TESTBED=${name}): ${(cause as Error).message}`, { flag: 'testbed-hosts' }, { cause })
  }
  // On stderr, so that --json output stays JSON lines.
  console.error(`[bench] test bed ${name}: ${hosts} host(s), ${bed.address(1)}-${bed.address(hosts)}, every link at ${linkMbit} Mbit/s both ways (tbf); taken down at the end`)
  return bed
}

/** Whatever ends the process (an error, Ctrl-C, SIGTERM) takes its beds down. */
function hookExit(): void {
  if (hooked) return
  hooked = true
  process.on('exit', () => {
    for (const bed of [...beds]) {
      try {
        bed.down()
      } catch {
        // exiting anyway; `scripts/testbed.sh down` with RINGTRAIN_TESTBED=<name> removes the rest
      }
    }
  })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130))
}

/** 2(N−1)/N × bytes over the link rate, in ms: what a ring all-reduce cannot beat. */
export function ringBoundMs(workers: number, bytes: number, linkMbit: number): number {
  return ((2 * (workers - 1)) / workers) * bytes * 8 / (linkMbit * 1e6) * 1000
}
