#!/usr/bin/env node
/** The `ringtrain` command. Each subcommand lives in commands/ and loads its heavy modules lazily. */
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import { benchCommand } from './commands/bench.js'

await yargs(hideBin(process.argv))
  .scriptName('ringtrain')
  .command(benchCommand)
  .demandCommand(1, 'Name a command: ringtrain <command> --help lists the options of each.')
  .strict()
  .help()
  .parseAsync()
