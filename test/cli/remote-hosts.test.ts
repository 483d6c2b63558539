/**
 * `launch --hosts` / `--hostfile`: the host lists as horovodrun -H and mpirun hostfiles write
 * them, where each worker goes, and the ssh command a remote worker is started with. Bad
 * input is a ConfigError naming the entry or line, what was expected and what came.
 */
import { describe, expect, test } from 'vitest'
import { ConfigError } from '@ringtrain/core'
import { isThisMachine, parseHostList, parseHostfileText, placeWorkers, remoteEnvironment, shellQuote, splitCommandLine, sshWorkerCommand } from '@ringtrain/cli'
import { cliTestTimeout, runCli } from '../helpers/run-cli.js'

/** The ConfigError `run` throws (fails when it throws nothing or something else). */
function configError(run: () => unknown): ConfigError {
  try {
    run()
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return error as ConfigError
  }
  throw new Error('expected a ConfigError, got none')
}

describe('--hosts', () => {
  test('HOST:SLOTS entries in order; a bare host has one slot; user@ and bracketed IPv6 are kept for ssh', () => {
    expect(parseHostList('h1:2,h2:2')).toEqual([{ host: 'h1', slots: 2 }, { host: 'h2', slots: 2 }])
    expect(parseHostList('10.0.0.2, me@gpu-3.example.org:4,[fd00::2]:2,solo')).toEqual([
      { host: '10.0.0.2', slots: 1 },
      { host: 'me@gpu-3.example.org', slots: 4 },
      { host: '[fd00::2]', slots: 2 },
      { host: 'solo', slots: 1 },
    ])
  })

  test('a bad entry is named with what was expected and what came', () => {
    const slots = configError(() => parseHostList('h0:1,h1:x'))
    expect(slots.message).toBe("--hosts entry 2 ('h1:x'): expected the number of slots (workers on that host) as an integer ≥ 1, got 'x'.")
    expect(slots.context).toMatchObject({ flag: 'hosts', expected: 'an integer ≥ 1', got: 'x' })
    expect(configError(() => parseHostList('h1:0')).message).toMatch(/entry 1 \('h1:0'\).*got '0'/)
    expect(configError(() => parseHostList('h1:2,,h2')).message).toMatch(/--hosts entry 2 \(''\) is empty/)
    expect(configError(() => parseHostList('h1 x:2')).message).toMatch(/expected a host name or address .* got 'h1 x'/)
    expect(configError(() => parseHostList('fd00::2:1')).message).toMatch(/got 'fd00::2'|got 'fd00:'/)
    expect(configError(() => parseHostList('h1:1,h2,h1:3')).message).toBe('--hosts names h1 twice: give each host once, with all its slots.')
  })
})

describe('--hostfile', () => {
  test("mpirun's 'HOST slots=N', horovod's 'HOST:N' and a bare HOST, with comments and blank lines", () => {
    const text = '# the cluster\nh1 slots=2\n\n  h2:3   # a comment\nh3\n'
    expect(parseHostfileText(text, 'hosts.txt')).toEqual([{ host: 'h1', slots: 2 }, { host: 'h2', slots: 3 }, { host: 'h3', slots: 1 }])
  })

  test('a bad line is named by number', () => {
    const error = configError(() => parseHostfileText('h1 slots=2\nh2 cpus=4\n', 'hostfile hosts.txt'))
    expect(error.message).toBe("hostfile hosts.txt line 2 ('h2 cpus=4'): expected 'HOST slots=N', 'HOST:N' or 'HOST'; got 'cpus=4' after the host.")
    expect(error.context).toMatchObject({ line: 2, expected: 'slots=N', got: 'cpus=4' })
    expect(configError(() => parseHostfileText('h1 slots=two\n', 'f')).message).toMatch(/^f line 1 \('h1 slots=two'\): .* got 'two'/)
    expect(configError(() => parseHostfileText('h1:2 slots=2\n', 'f')).message).toMatch(/gives the slots twice/)
    expect(configError(() => parseHostfileText('# nothing\n\n', 'f')).message).toMatch(/^f names no host/)
    expect(configError(() => parseHostfileText('h1\nh1 slots=2\n', 'f')).message).toMatch(/names h1 twice/)
  })
})

describe('placing the workers', () => {
  const local = (host: string) => host === 'localhost'

  test('slots fill in order, each host counting its local ranks from 0; -n may take fewer', () => {
    const hosts = [{ host: 'localhost', slots: 1 }, { host: 'h2', slots: 2 }, { host: 'h3', slots: 2 }]
    expect(placeWorkers(hosts, 5, local)).toEqual([
      { host: 'localhost', localRank: 0, local: true },
      { host: 'h2', localRank: 0, local: false },
      { host: 'h2', localRank: 1, local: false },
      { host: 'h3', localRank: 0, local: false },
      { host: 'h3', localRank: 1, local: false },
    ])
    expect(placeWorkers(hosts, 2, local).map((p) => `${p.host}/${p.localRank}`)).toEqual(['localhost/0', 'h2/0'])
  })

  test('more workers than slots is refused', () => {
    const error = configError(() => placeWorkers([{ host: 'h1', slots: 2 }], 3, local))
    expect(error.message).toBe('-n 3 is more workers than the hosts have slots (2: h1:2).')
    expect(error.context).toMatchObject({ flag: 'workers', expected: '≤ 2', got: 3 })
  })

  test('localhost, loopback and this machine run local workers; another address does not', () => {
    expect(isThisMachine('localhost')).toBe(true)
    expect(isThisMachine('127.0.0.1')).toBe(true)
    expect(isThisMachine('me@localhost')).toBe(true)
    expect(isThisMachine('192.0.2.77')).toBe(false) // TEST-NET-1: never an address of this machine
  })
})

describe('the ssh command of a remote worker', () => {
  test('--ssh-command splits as a shell would, quotes included; a broken one is refused', () => {
    expect(splitCommandLine('ssh -p 2222 -i "my key" -o \'ProxyCommand=nc %h %p\'', 'ssh-command')).toEqual(['ssh', '-p', '2222', '-i', 'my key', '-o', 'ProxyCommand=nc %h %p'])
    expect(splitCommandLine('ssh a\\ b ""', 'ssh-command')).toEqual(['ssh', 'a b', ''])
    expect(configError(() => splitCommandLine('ssh -i "key', 'ssh-command')).message).toBe('--ssh-command has an unterminated " quote: \'ssh -i "key\'.')
    expect(configError(() => splitCommandLine('  ', 'ssh-command')).message).toMatch(/--ssh-command is empty/)
  })

  test('ssh -T HOST, then the remote shell command: cd, exec, the environment, the worker reading its key from stdin', () => {
    const { command, args } = sshWorkerCommand({
      host: 'me@h2', ssh: ['ssh', '-p', '2222'], cwd: "/srv/ring train's", invocation: 'npx ringtrain', env: { RINGTRAIN_LOCAL_RANK: '1', NOTE: 'a b' },
      args: ['--coordinator', 'tcp://10.0.0.1:5000', '--job-id', 'j1', '--local-rank', '1'],
    })
    expect(command).toBe('ssh')
    expect(args).toEqual(['-p', '2222', '-T', 'me@h2', "cd '/srv/ring train'\\''s' && exec env RINGTRAIN_LOCAL_RANK=1 'NOTE=a b' npx ringtrain worker --coordinator tcp://10.0.0.1:5000 --job-id j1 --local-rank 1 --secret-file=- --stop-with-stdin"])
  })

  test('shell quoting survives quotes and spaces', () => {
    expect(shellQuote('plain/path-1.2')).toBe('plain/path-1.2')
    expect(shellQuote("it's here")).toBe("'it'\\''s here'")
    expect(shellQuote('$HOME')).toBe("'$HOME'")
  })

  test('--env NAME takes its value here, NAME=VALUE is literal; unset or malformed names are refused', () => {
    expect(remoteEnvironment(['A', 'B=x=y', 'C='], { A: '1' })).toEqual({ A: '1', B: 'x=y', C: '' })
    expect(configError(() => remoteEnvironment(['MISSING'], {})).message).toMatch(/--env MISSING: MISSING is not set in the launcher's environment/)
    expect(configError(() => remoteEnvironment(['1BAD=x'], {})).message).toMatch(/expected NAME or NAME=VALUE/)
  })
})

describe('the command line', () => {
  test('launch refuses bad host lists and conflicting flags with exit 2 and the reason, before it starts anything', async () => {
    const task = 'examples/linear-regression'
    const cases: [string[], RegExp][] = [
      [['--hosts', 'h1:x'], /ConfigError \[E_CONFIG\]: --hosts entry 1 \('h1:x'\): expected the number of slots .* got 'x'/],
      [['--hosts', 'h1:1', '--hostfile', 'f'], /--hosts and --hostfile both name the machines/],
      [['--hosts', 'localhost:1,192.0.2.1:1', '--bind', 'tcp://127.0.0.1:0'], /--bind tcp:\/\/127\.0\.0\.1:0 is a loopback address, which the workers on 192\.0\.2\.1 cannot reach/],
      [['--hosts', 'h1:2', '-n', '3'], /-n 3 is more workers than the hosts have slots \(2: h1:2\)/],
      [['--hostfile', '/nonexistent/hosts'], /could not read the hostfile \/nonexistent\/hosts/],
      [[], /launch needs the number of workers: -n N, or the machines with --hosts/],
    ]
    for (const [flags, message] of cases) {
      const run = await runCli(['launch', task, ...flags])
      expect(run.code, run.output).toBe(2)
      expect(run.output).toMatch(message)
      expect(run.output).not.toMatch(/\n\s+at /) // no stack trace
    }
  }, cliTestTimeout(undefined, 6))

  test('worker --secret-file=- without a key on stdin says what it expected', async () => {
    const run = await runCli(['worker', '--coordinator', 'tcp://127.0.0.1:9', '--secret-file=-'])
    expect(run.code).toBe(2)
    expect(run.output).toMatch(/--secret-file=-: expected the job key file's JSON line on stdin .* got nothing \(stdin ended at once\)/)
  }, cliTestTimeout())
})
