import { ConfigError } from '@ringtrain/core'

/** Placeholder until the compute benchmark lands: fails loudly instead of printing figures. */
export async function run(_argv: Record<string, unknown>): Promise<void> {
  throw new ConfigError('ringtrain bench compute is not implemented yet.')
}
