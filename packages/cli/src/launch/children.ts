/**
 * The processes a launcher starts. It owns their whole life: output is relayed line by line
 * with a prefix, exits are reported, and `stopAll()` ends every one (SIGTERM, then SIGKILL
 * after `graceMs`) so that nothing is orphaned, also when the launcher itself is signalled.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'

export interface ChildExit {
  index: number
  pid: number
  code: number | null
  signal: NodeJS.Signals | null
}

export class Children {
  private readonly children: ChildProcess[] = []
  private readonly exits: Promise<ChildExit>[] = []

  constructor(private readonly onLine: (index: number, line: string) => void) {}

  start(index: number, command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    this.children.push(child)
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream! }).on('line', (line) => this.onLine(index, line))
    }
    this.exits.push(
      new Promise((resolve) => {
        child.on('exit', (code, signal) => resolve({ index, pid: child.pid ?? -1, code, signal }))
        child.on('error', () => resolve({ index, pid: child.pid ?? -1, code: 127, signal: null }))
      }),
    )
    return child
  }

  /** Resolves with each child's exit, in start order. */
  allExited(): Promise<ChildExit[]> {
    return Promise.all(this.exits)
  }

  onExit(listener: (exit: ChildExit) => void): void {
    for (const exit of this.exits) void exit.then(listener)
  }

  /**
   * Ends every child: those still running after `exitGraceMs` (time to exit by themselves,
   * e.g. after the coordinator's Shutdown or Abort) get SIGTERM, and SIGKILL `killGraceMs`
   * later. Resolves when all have exited.
   */
  async stopAll(options: { exitGraceMs?: number; killGraceMs?: number } = {}): Promise<void> {
    const running = () => this.children.filter((c) => c.exitCode === null && c.signalCode === null)
    const timers = [
      setTimeout(() => { for (const child of running()) child.kill('SIGTERM') }, options.exitGraceMs ?? 0),
      setTimeout(() => { for (const child of running()) child.kill('SIGKILL') }, (options.exitGraceMs ?? 0) + (options.killGraceMs ?? 5_000)),
    ]
    await this.allExited()
    for (const timer of timers) clearTimeout(timer)
  }
}
