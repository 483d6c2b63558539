/**
 * Shared rules for validating a task spec. Every failure is a `ConfigError` (`E_CONFIG`)
 * that says `task '<name>': <field> <rule>, got <value>.`
 */
import { ConfigError } from '@ringtrain/core'
import { describeValue } from './describe-value.js'

/** Where a rule is checked: the task's name (for the message) and the field's path. */
export interface SpecField {
  task: string
  field: string
}

export function specError(where: SpecField, rule: string, value: unknown): ConfigError {
  return new ConfigError(`task '${where.task}': ${where.field} ${rule}, got ${describeValue(value)}.`, {
    task: where.task,
    field: where.field,
    got: typeof value === 'function' ? 'a function' : value,
  })
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function requireNumber(where: SpecField, value: unknown, rule: { min?: number; minExclusive?: number; maxExclusive?: number; max?: number }): number {
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (rule.min === undefined || value >= rule.min) &&
    (rule.minExclusive === undefined || value > rule.minExclusive) &&
    (rule.max === undefined || value <= rule.max) &&
    (rule.maxExclusive === undefined || value < rule.maxExclusive)
  if (!ok) throw specError(where, `must be ${describeRange(rule)}`, value)
  return value as number
}

export function requireInteger(where: SpecField, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw specError(where, `must be an integer >= ${min}`, value)
  }
  return value
}

export function requireFunction(where: SpecField, value: unknown, what: string): void {
  if (typeof value !== 'function') throw specError(where, `must be ${what}`, value)
}

/** Rejects keys of `value` that are not in `allowed`. */
export function rejectUnknownKeys(where: SpecField, value: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new ConfigError(`task '${where.task}': ${where.field}.${key} is not an option here; options are ${allowed.join(', ')}.`, {
        task: where.task,
        field: `${where.field}.${key}`,
      })
    }
  }
}

export function at(where: SpecField, key: string): SpecField {
  return { task: where.task, field: `${where.field}.${key}` }
}

function describeRange(rule: { min?: number; minExclusive?: number; maxExclusive?: number; max?: number }): string {
  const parts: string[] = []
  if (rule.min !== undefined) parts.push(`>= ${rule.min}`)
  if (rule.minExclusive !== undefined) parts.push(`> ${rule.minExclusive}`)
  if (rule.max !== undefined) parts.push(`<= ${rule.max}`)
  if (rule.maxExclusive !== undefined) parts.push(`< ${rule.maxExclusive}`)
  return `a finite number${parts.length ? ' ' + parts.join(' and ') : ''}`
}
