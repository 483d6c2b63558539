/**
 * Runs the `ringtrain` CLI as a real process (as `pnpm ringtrain …` does) and collects its
 * output. Every process started is killed when the test ends, whatever happened.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { onTestFinished } from 'vitest'
import { scaled } from './slack.js'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const cliMain = fileURLToPath(new URL('../../packages/cli/src/main.ts', import.meta.url))

export interface CliRun {
  child: ChildProcess
  output: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

export function startCli(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): CliRun {
  const child = spawn(process.execPath, ['--import', 'tsx', cliMain, ...args], {
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
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return { child, output: () => output, exited }
}

/** Runs the CLI to its end; fails with its output if it takes longer than `timeoutMs`. */
export async function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}) {
  const run = startCli(args, options)
  const timeoutMs = options.timeoutMs ?? 120_000
  let timer: NodeJS.Timeout | undefined
  const result = await Promise.race([
    run.exited,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`ringtrain ${args.join(' ')} ran past ${timeoutMs} ms; output:\n${run.output()}`)), timeoutMs)
    }),
  ]).finally(() => clearTimeout(timer))
  return { ...result, output: run.output() }
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

function withoutNodePath(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_PATH: _ignored, ...rest } = env
  return rest
}
