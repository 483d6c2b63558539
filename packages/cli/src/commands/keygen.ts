/** `ringtrain keygen --out job.key`: a new job key (Note [Job security] in @ringtrain/core). */
import type { CommandModule } from 'yargs'
import { writeJobKeyFile } from '@ringtrain/core'

export const keygenCommand: CommandModule<object, { out: string }> = {
  command: 'keygen',
  describe: 'Write a new job key for --secret-file (mode 0600)',
  builder: (y) => y.option('out', { type: 'string', demandOption: true, describe: 'file to create; never overwritten' }) as never,
  // async, so that a ConfigError reaches main's fail handler (exit 2) like other commands'.
  handler: async (argv) => {
    const key = writeJobKeyFile(argv.out)
    process.stdout.write(`Wrote a new job key to ${argv.out} (mode 0600; public key ${key.publicKey}).\nCopy it to every machine of the job, keeping it readable by you only, and pass --secret-file ${argv.out} to \`ringtrain coordinator\` and every \`ringtrain worker\`. Anyone who has this file can join the job.\n`)
  },
}
