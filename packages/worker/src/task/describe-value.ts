/** A value as it appears in a validation message: `'adamw'`, `-1`, `undefined`, `a function`. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`
  if (typeof value === 'function') return 'a function'
  if (value === undefined || typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value)
  try {
    const json = JSON.stringify(value)
    return json.length > 60 ? `${json.slice(0, 57)}...` : json
  } catch {
    return Object.prototype.toString.call(value)
  }
}

/** `a, b or c` for rule messages. */
export function listChoices(choices: readonly string[]): string {
  return choices.join(', ')
}
