import { ConfigError } from '@ringtrain/core'

/** Placeholder until the allreduce benchmark lands: fails loudly instead of printing figures. */
export async function run(_argv: Record<string, unknown>): Promise<void> {
  throw new ConfigError('ringtrain bench allreduce is not implemented yet.')
}
