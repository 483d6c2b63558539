/**
 * Runs the `ringtrain` CLI as a real process (as `pnpm ringtrain …` does) and collects its
 * output. Every process started is killed when the test ends, whatever happened.
 *
 * Every wait here has a deadline scaled by the machine's load (slack.ts) and fails with the
 * output so far. A test that runs the CLI gives vitest a longer timeout than that deadline
 * (`cliTestTimeout`), so that a hang is reported by the deadline's error, with the output,
 * rather than by vitest's bare "Test timed out".
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { onTestFinished } from 'vitest'
import { scaled, slack } from './slack.js'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const cliMain = fileURLToPath(new URL('../../packages/cli/src/main.ts', import.meta.url))

export interface CliRun {
  child: ChildProcess
  output: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * `wrap`: a command the CLI runs under, e.g. `['unshare', '--mount', …]` for a process that
 * must not see some folder (another machine's file system).
 */
export function startCli(args: string[], options: { env?: NodeJS.ProcessEnv; wrap?: string[] } = {}): CliRun {
  const cli = [process.execPath, '--import', 'tsx', cliMain, ...withLoadTolerance(args)]
  const [command, ...rest] = [...(options.wrap ?? []), ...cli]
  const child = spawn(command!, rest, {
    cwd: repoRoot,
    // vitest's launcher sets NODE_PATH to pnpm's hoisted store; a user's shell does not.
    env: { ...withoutNodePath(process.env), ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  // Settled on 'close', once stdout and stderr are drained too: on a busy machine the last
  // chunks of output can still be in the pipe at 'exit', and tests assert on them. A
  // grandchild that inherited the pipes and outlives the CLI would hold 'close' back: after
  // a grace period the exit is reported anyway.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    let grace: NodeJS.Timeout | undefined
    child.on('exit', (code, signal) => {
      grace = setTimeout(() => resolve({ code, signal }), scaled(5_000))
    })
    child.on('close', (code, signal) => {
      clearTimeout(grace)
      resolve({ code, signal })
    })
  })
  // The launcher's workers too: a launcher SIGKILLed alone (a test that timed out or failed
  // mid-run) cannot stop them, and they outlived the test, writing into its output folder
  // after it was removed, until their coordinator's silence stopped them.
  onTestFinished(() => {
    const orphans = descendantsOf(child.pid!)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    for (const pid of orphans) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  })
  return { child, output: () => output, exited }
}

/**
 * The default deadline of one CLI run, scaled by the load: the slowest job the tests launch
 * (examples/mnist-mlp) takes about 35 s on a quiet 2-core machine and up to 110 s at a load
 * of 7 per core (two CPU hogs beside other test runs).
 */
export const CLI_DEADLINE_MS = scaled(120_000)

/** vitest's timeout for a test that waits on the CLI `runs` times in a row, each within `deadlineMs`. */
export function cliTestTimeout(deadlineMs = CLI_DEADLINE_MS, runs = 1): number {
  return runs * deadlineMs + 30_000
}

/** Runs the CLI to its end; fails with its output if it takes longer than `timeoutMs`. */
export async function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  const run = startCli(args, options)
  const result = await waitForExit(run, options.timeoutMs)
  return { ...result, output: run.output() }
}

/** Resolves with the exit of `run`; fails with its output if it has not exited within `timeoutMs`. */
export function waitForExit(run: CliRun, timeoutMs = CLI_DEADLINE_MS): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return withDeadline(run.exited, timeoutMs, () => `${commandLine(run)} ran past ${timeoutMs} ms; output:\n${run.output()}`)
}

/**
 * Resolves with the output once it matches `pattern` (checked on every chunk the process
 * writes); fails with the output if the process exits first or nothing matches within `timeoutMs`.
 */
export function waitForOutput(run: CliRun, pattern: RegExp, timeoutMs = CLI_DEADLINE_MS): Promise<string> {
  const matched = new Promise<string>((resolve, reject) => {
    const check = () => {
      if (!pattern.test(run.output())) return
      stop()
      resolve(run.output())
    }
    const stop = () => {
      run.child.stdout!.off('data', check)
      run.child.stderr!.off('data', check)
    }
    // Listeners added after startCli's: `output()` already holds the chunk when `check` runs.
    run.child.stdout!.on('data', check)
    run.child.stderr!.on('data', check)
    check()
    void run.exited.then(({ code, signal }) => {
      stop()
      if (pattern.test(run.output())) resolve(run.output())
      else reject(new Error(`${commandLine(run)} exited (${signal ?? `code ${code}`}) before its output matched ${pattern}; output:\n${run.output()}`))
    })
  })
  return withDeadline(matched, timeoutMs, () => `${commandLine(run)}: no output matched ${pattern} within ${timeoutMs} ms; output:\n${run.output()}`)
}

function commandLine(run: CliRun): string {
  return `ringtrain ${run.child.spawnargs.slice(4).join(' ')}`
}

function withDeadline<T>(promise: Promise<T>, timeoutMs: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), timeoutMs)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

/** Pids of the live descendants of `pid` (Linux /proc; none elsewhere). */
function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>()
  let entries: string[]
  try {
    entries = readdirSync('/proc').filter((d) => /^\d+$/.test(d))
  } catch {
    return []
  }
  for (const entry of entries) {
    try {
      // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)])
    } catch {
      // exited meanwhile
    }
  }
  const found: number[] = []
  for (let queue = [pid]; queue.length > 0; ) {
    const next = children.get(queue.shift()!) ?? []
    found.push(...next)
    queue.push(...next)
  }
  return found
}

/** True while a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * A job started by a test tolerates a busy machine as a user would make it: a worker
 * heartbeats from the thread that computes its steps, and beside two CPU hogs (load 7 per
 * core) the first step of examples/mnist-cnn alone outlasted the default limit (1 s × 10
 * missed heartbeats), failing the job. Unless the test sets them, `launch` and `coordinator`
 * get --heartbeat-max-missed and --step-timeout-ms scaled by the load.
 */
function withLoadTolerance(args: string[]): string[] {
  if (args[0] !== 'launch' && args[0] !== 'coordinator') return args
  const extra: string[] = []
  if (!args.includes('--heartbeat-max-missed')) extra.push('--heartbeat-max-missed', String(Math.ceil(10 * slack)))
  if (!args.includes('--step-timeout-ms')) extra.push('--step-timeout-ms', String(scaled(60_000)))
  return [...args, ...extra]
}

function withoutNodePath(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_PATH: _ignored, ...rest } = env
  return rest
}
