#!/usr/bin/env node
/** The `ringtrain` command. Each subcommand lives in commands/ and loads its heavy modules lazily. */
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { benchCommand } from './commands/bench.js'
import { coordinatorCommand } from './commands/coordinator.js'
import { launchCommand } from './commands/launch.js'
import { workerCommand } from './commands/worker.js'

const cli = yargs(hideBin(process.argv))
await cli
  .scriptName('ringtrain')
  .wrap(Math.min(120, cli.terminalWidth()))
  .command(launchCommand)
  .command(coordinatorCommand)
  .command(workerCommand)
  .command(benchCommand)
  .demandCommand(1, 'Name a command: ringtrain <command> --help lists the options of each.')
  .strict()
  .fail((message, error, y) => {
    // Typed errors (ConfigError and friends) print as `Name [CODE]: message`; flag errors
    // print yargs' usage first. Either way: exit code 2, no stack trace for bad input.
    if (error && 'code' in error && String(error.code).startsWith('E_')) {
      process.stderr.write(`${error.name} [${String(error.code)}]: ${error.message}\n`)
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
