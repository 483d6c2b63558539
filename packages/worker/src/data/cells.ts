import { DistError } from '@ringtrain/core'

/** Classes of a one-hot target: a count (labels 0 … n-1) or the label names in order. */
export type OneHotClasses = number | readonly string[]

const decimal = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/

/** The number a text cell holds (decimal notation, surrounding spaces allowed), or undefined. */
export function parseNumber(text: string): number | undefined {
  const trimmed = text.trim()
  return decimal.test(trimmed) ? Number(trimmed) : undefined
}

/** Number of one-hot slots for these classes. */
export function classCount(classes: OneHotClasses): number {
  return typeof classes === 'number' ? classes : classes.length
}

/** The class index of a label (a number, or a string that is a number or a class name), or undefined. */
export function classIndex(label: unknown, classes: OneHotClasses): number | undefined {
  if (typeof classes !== 'number' && typeof label === 'string') {
    const named = classes.indexOf(label.trim())
    if (named >= 0) return named
  }
  const value = typeof label === 'number' ? label : typeof label === 'string' ? parseNumber(label) : undefined
  if (value === undefined || !Number.isInteger(value) || value < 0 || value >= classCount(classes)) return undefined
  return value
}

/** What a label must be, for messages: `an integer class in [0, 10)` or `one of 'a', 'b'`. */
export function describeClasses(classes: OneHotClasses): string {
  if (typeof classes === 'number') return `an integer class in [0, ${classes})`
  return `one of ${classes.map((name) => `'${name}'`).join(', ')} or a class index in [0, ${classes.length})`
}

/**
 * A data error at one cell: `data/train.csv line 17, column 'x2': expected a number, got 'abc'`.
 * `where` is the place (`column 'x2'` or `field 'x2'`); `got` is already formatted.
 */
export function cellError(file: string, line: number, where: string, expected: string, got: string): DistError {
  return new DistError('E_DATA', `${file} line ${line}, ${where}: expected ${expected}, got ${got}`, {
    file,
    line,
    expected,
    got,
  })
}
