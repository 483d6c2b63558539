/**
 * The processes a launcher starts. It owns their whole life: output is relayed line by line
 * with a prefix, exits are reported, and `stopAll()` ends every one (SIGTERM, then SIGKILL
 * after `graceMs`) so that nothing is orphaned, also when the launcher itself is signalled.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'

export interface ChildExit {
  label: string
  pid: number
  code: number | null
  signal: NodeJS.Signals | null
}

export class Children {
  private readonly children: ChildProcess[] = []
  private readonly exits: Promise<ChildExit>[] = []

  constructor(private readonly onLine: (label: string, line: string) => void) {}

  /**
   * `label` names the child in its relayed lines. `stdin`: written to the child's stdin,
   * which then stays open until the child exits (or this process does). `ownGroup`: the
   * child leads a process group of its own, so that a terminal's Ctrl-C does not reach it.
   */
  start(label: string, command: string, args: string[], env: NodeJS.ProcessEnv, options: { stdin?: string; ownGroup?: boolean } = {}): { child: ChildProcess; exit: Promise<ChildExit> } {
    const child = spawn(command, args, { env, stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], detached: options.ownGroup ?? false })
    this.children.push(child)
    if (options.stdin !== undefined) {
      // A child that exits early closes the pipe: the write fails, and its exit tells why.
      child.stdin!.on('error', () => {})
      child.stdin!.write(options.stdin)
    }
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream! }).on('line', (line) => this.onLine(label, line))
    }
    const exit = new Promise<ChildExit>((resolve) => {
      child.on('exit', (code, signal) => resolve({ label, pid: child.pid ?? -1, code, signal }))
      child.on('error', (error) => {
        this.onLine(label, `could not start ${command}: ${error.message}`)
        resolve({ label, pid: child.pid ?? -1, code: 127, signal: null })
      })
    })
    this.exits.push(exit)
    return { child, exit }
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
