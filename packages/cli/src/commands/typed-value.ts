/**
 * What the user typed for a flag, for error messages: yargs turns `-n abc` into NaN, and
 * "got NaN" does not say what was wrong. Looks the flag up in the raw arguments (`--flag
 * VALUE`, `--flag=VALUE`, `-n VALUE`, `-nVALUE`).
 */
export function typedValue(flag: string, args: readonly string[], aliases: readonly string[] = []): string | undefined {
  const names = [`--${flag}`, ...aliases.map((alias) => (alias.length === 1 ? `-${alias}` : `--${alias}`))]
  for (let i = args.length - 1; i >= 0; i--) {
    const arg = args[i]!
    for (const name of names) {
      if (arg === name) return args[i + 1]
      if (arg.startsWith(`${name}=`)) return arg.slice(name.length + 1)
      if (name.length === 2 && arg.startsWith(name) && !arg.startsWith('--')) return arg.slice(2)
    }
  }
  return undefined
}

/** A ConfigError message whose "got NaN" names what was typed instead: `got 'abc' (not a number)`. */
export function withTypedValue(message: string, flag: unknown, args: readonly string[], aliases: Record<string, readonly string[]>): string {
  if (typeof flag !== 'string' || !/got NaN\b/.test(message)) return message
  const typed = typedValue(flag, args, aliases[flag] ?? [])
  return typed === undefined ? message : message.replace(/got NaN\b/, `got '${typed}' (not a number)`)
}
