#!/usr/bin/env node
/** The `ringtrain` command. Each subcommand lives in commands/ and loads its heavy modules lazily. */
import { readFileSync } from 'node:fs'
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { benchCommand } from './commands/bench.js'
import { coordinatorCommand } from './commands/coordinator.js'
import { keygenCommand } from './commands/keygen.js'
import { launchCommand } from './commands/launch.js'
import { withTypedValue } from './commands/typed-value.js'
import { workerCommand } from './commands/worker.js'

/** The version of this install, from @ringtrain/cli's package.json. */
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }

const cli = yargs(hideBin(process.argv))
await cli
  .scriptName('ringtrain')
  .version(version)
  .wrap(Math.min(120, cli.terminalWidth()))
  .command(launchCommand)
  .command(coordinatorCommand)
  .command(workerCommand)
  .command(benchCommand)
  .command(keygenCommand)
  .demandCommand(1, 'Name a command: ringtrain <command> --help lists the options of each.')
  .strict()
  .fail((message, error, y) => {
    // Typed errors (ConfigError and friends, from flag checks too) print as
    // `Name [CODE]: message`; flags yargs itself refuses print the usage first. Either way:
    // exit code 2, no stack trace for bad input.
    if (error && 'code' in error && String(error.code).startsWith('E_')) {
      const flag = (error as { context?: { flag?: unknown } }).context?.flag
      process.stderr.write(`${error.name} [${String(error.code)}]: ${withTypedValue(error.message, flag, hideBin(process.argv), { workers: ['n'] })}\n`)
      if (String(error.code) === 'E_CONFIG') process.stderr.write(`(ringtrain ${hideBin(process.argv)[0] ?? ''} --help lists the options.)\n`)
    } else if (error && message !== error.message) {
      throw error // not a flag problem: a bug, show its stack
    } else {
      y.showHelp()
      process.stderr.write(`\n${message}\n`)
    }
    process.exit(2)
  })
  .help()
  .parseAsync()
