/**
 * Flags that decide how a job's sockets authenticate (Note [Job security] in @ringtrain/core):
 * `--secret-file` names the job key (made by `ringtrain keygen`), `--insecure` runs without
 * one. Listening beyond loopback without a key is refused (exit 2) unless --insecure.
 */
import type { Argv } from 'yargs'
import { ConfigError, INSECURE, readJobKeyFile, type JobSecurity } from '@ringtrain/core'
import { readJobKeyFromStdin } from './key-from-stdin.js'

export interface SecurityArgs {
  'secret-file'?: string
  insecure: boolean
  'encrypt-local': boolean
}

export function withSecurityOptions<T>(y: Argv<T>) {
  return y
    .option('secret-file', { type: 'string', describe: 'the job key (ringtrain keygen --out FILE); the coordinator and every worker need the same file, mode 0600 (--secret-file=-: its JSON line from stdin)' })
    .option('insecure', { type: 'boolean', default: false, describe: 'run without a key: anyone who reaches the ports can join, read or stop the job' })
    .option('encrypt-local', { type: 'boolean', default: false, describe: 'encrypt the ring between workers of one machine too (costs about half the bandwidth; the same on every worker)' })
    .check((argv) => {
      if (argv['insecure'] && argv['secret-file'] !== undefined) throw new ConfigError('--insecure and --secret-file contradict each other: pass one of them.', { flag: 'insecure', got: 'both' })
      if (argv['insecure'] && argv['encrypt-local']) throw new ConfigError('--encrypt-local needs a job key; it cannot be combined with --insecure.', { flag: 'encrypt-local', got: 'both' })
      return true
    })
}

const MAKE_A_KEY = 'Make a key with `ringtrain keygen --out job.key`, copy it (mode 0600) to every machine of the job, and pass --secret-file job.key to the coordinator and to every worker; or pass --insecure on a network where everyone who can reach these ports may join, read or stop the job.'

/** 127.0.0.0/8, ::1 and localhost: reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h)
}

/** The host of a tcp://HOST:PORT endpoint (IPv6 in brackets), or the whole string otherwise. */
export function hostOf(endpoint: string): string {
  const match = /^tcp:\/\/(\[[^\]]*\]|[^:]*):/.exec(endpoint)
  return match ? match[1]! : endpoint
}

/**
 * The security of a process that listens on `listenHost`: its key when --secret-file is
 * given, INSECURE with --insecure, and otherwise `withoutKey()` when the host is loopback
 * (the coordinator makes a key of its own, a worker refuses). `who` and `flag` name the
 * process and the flag that set the host, for the message.
 */
export function jobSecurityFrom(argv: SecurityArgs, listen: { who: string; flag: string; value: string; host: string }, withoutKey: () => JobSecurity): JobSecurity {
  if (argv.insecure) return INSECURE
  const file = argv['secret-file']
  if (file !== undefined) return { mode: 'key', key: file === '-' ? readJobKeyFromStdin() : readJobKeyFile(file), encryptLocal: argv['encrypt-local'] }
  if (!isLoopbackHost(listen.host)) {
    throw new ConfigError(`The ${listen.who} would listen beyond this machine (${listen.flag} ${listen.value}) without a job key: anyone who reaches it could join the job, read its weights and gradients, or stop it. ${MAKE_A_KEY}`, { flag: listen.flag, expected: 'a loopback address, --secret-file or --insecure', got: listen.value })
  }
  return withoutKey()
}

/** What an --insecure process says when it starts. */
export function insecureWarning(who: string, where: string): string {
  return `WARNING: --insecure: the ${who} runs without a job key; any process that reaches ${where} can join this job, read its weights and gradients, or stop it.`
}
