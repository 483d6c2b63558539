/**
 * Workers on other machines, started over ssh as horovodrun -H does:
 *
 *   SSH_COMMAND -T HOST 'cd CWD && exec env VAR=… INVOCATION worker ARGS --secret-file=- --stop-with-stdin'
 *
 * - The job key goes down ssh's stdin (one JSON line; `--secret-file=-` reads it), never on a
 *   command line or in an environment variable of either machine.
 * - stdin then stays open for the worker's whole life: the worker exits when it closes
 *   (`--stop-with-stdin`). ssh forwards that end-of-file when the launcher closes the pipe,
 *   exits or is killed, and sshd closes it when the connection drops, so a remote worker
 *   never outlives its launcher. `-T`: no terminal (none could forward our stdin faithfully).
 * - ssh runs in a process group of its own: a terminal's Ctrl-C reaches the launcher only,
 *   which turns it into a graceful stop through the coordinator; killing ssh (a second
 *   Ctrl-C, or the end of the job) ends the remote worker through its stdin.
 * - INVOCATION is how the remote machine runs ringtrain: by default the launcher's own Node,
 *   tsx loader and CLI, by absolute path, so ringtrain must be installed at the same path on
 *   every machine (horovodrun's assumption); `--remote-command` replaces it.
 */
import { ConfigError } from '@ringtrain/core'
import { workerCommand } from './worker-command.js'

export const DEFAULT_SSH_COMMAND = 'ssh -o BatchMode=yes'

export interface RemoteWorker {
  /** As in the host list (`user@` included). */
  host: string
  /** Words of the ssh command (`--ssh-command`, split). */
  ssh: string[]
  /** Folder the remote worker starts in (the launcher's). */
  cwd: string
  /** Shell words that run ringtrain remotely (`--remote-command`); default: this launcher's own. */
  invocation?: string
  /** Environment variables set for the remote worker (on its command line: not for secrets). */
  env: Record<string, string>
  /** Arguments after `worker`. */
  args: string[]
}

/** The local command that starts one remote worker: ssh with the remote shell command. */
export function sshWorkerCommand(worker: RemoteWorker): { command: string; args: string[] } {
  const invocation = worker.invocation ?? defaultInvocation()
  const env = Object.entries(worker.env).map(([name, value]) => shellQuote(`${name}=${value}`))
  const remote = [`cd ${shellQuote(worker.cwd)} && exec`, ...(env.length > 0 ? ['env', ...env] : []), invocation, 'worker', ...worker.args.map(shellQuote), '--secret-file=-', '--stop-with-stdin'].join(' ')
  const [command, ...options] = worker.ssh
  return { command: command!, args: [...options, '-T', worker.host, remote] }
}

/** This launcher's Node, tsx loader and CLI, quoted for a POSIX shell. */
export function defaultInvocation(): string {
  const { command, args } = workerCommand([])
  return [command, ...args.slice(0, -1)].map(shellQuote).join(' ')
}

/** One word for a POSIX shell: single-quoted unless it is plainly safe. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`
}

/**
 * Splits a command line into words as a POSIX shell would, without expanding anything:
 * whitespace separates, '…' and "…" quote, a backslash escapes the next character.
 */
export function splitCommandLine(text: string, flag: string): string[] {
  const words: string[] = []
  let word: string | undefined
  let quote: "'" | '"' | undefined
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quote === "'") {
      if (c === "'") quote = undefined
      else word += c
    } else if (c === '\\' && i + 1 < text.length && (quote === undefined || /["\\$`]/.test(text[i + 1]!))) {
      word = (word ?? '') + text[++i]
    } else if (quote === '"') {
      if (c === '"') quote = undefined
      else word += c
    } else if (c === "'" || c === '"') {
      quote = c
      word ??= ''
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word)
      word = undefined
    } else {
      word = (word ?? '') + c
    }
  }
  if (quote !== undefined) throw new ConfigError(`--${flag} has an unterminated ${quote} quote: '${text}'.`, { flag, expected: 'balanced quotes', got: text })
  if (word !== undefined) words.push(word)
  if (words.length === 0) throw new ConfigError(`--${flag} is empty: expected a command, e.g. '${DEFAULT_SSH_COMMAND}'.`, { flag, expected: 'a command', got: text })
  return words
}

/** `--env NAME` (its value here) or `--env NAME=VALUE`, as mpirun -x. */
export function remoteEnvironment(specs: string[], env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const result: Record<string, string> = {}
  for (const spec of specs) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/s.exec(spec)
    if (match === null) throw new ConfigError(`--env '${spec}': expected NAME or NAME=VALUE (a variable name of letters, digits and _).`, { flag: 'env', expected: 'NAME or NAME=VALUE', got: spec })
    const value = match[2] ?? env[match[1]!]
    if (value === undefined) throw new ConfigError(`--env ${spec}: ${spec} is not set in the launcher's environment; set it, or pass --env ${spec}=VALUE.`, { flag: 'env', expected: 'a variable set here', got: spec })
    result[match[1]!] = value
  }
  return result
}
