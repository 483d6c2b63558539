import { ConfigError } from '@ringtrain/core'

/** Parses `2,4` or `1MiB,16MiB` style flag values; a bad item names the flag and the item. */
export function parseList<T>(text: string, flag: string, parseItem: (item: string) => T): T[] {
  const items = text.split(',').map((s) => s.trim()).filter(Boolean)
  if (items.length === 0) throw new ConfigError(`${flag} needs at least one value; got '${text}'.`)
  return items.map((item) => {
    const value = parseItem(item)
    if (typeof value === 'number' && (!Number.isInteger(value) || value < 1)) throw new ConfigError(`${flag}: '${item}' is not a positive integer.`)
    return value
  })
}
