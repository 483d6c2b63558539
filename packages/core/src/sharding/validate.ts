import { ConfigError } from '../errors.js'

// Argument checks shared by the sharding functions. Messages state the rule with the value
// in it (docs/style.md, "Errors"): "distributedSampler: rank (4) must be less than worldSize (4)."

/** Throws `ConfigError` unless `value` is an integer ≥ `minimum`. */
export function requireInteger(where: string, name: string, value: unknown, minimum: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) {
    const rule = minimum <= Number.MIN_SAFE_INTEGER ? 'an integer' : minimum === 0 ? 'a non-negative integer' : minimum === 1 ? 'a positive integer' : `an integer ≥ ${minimum}`
    throw new ConfigError(`${where}: ${name} (${String(value)}) must be ${rule}.`, {
      argument: name,
      expected: rule,
      got: value,
    })
  }
  return value
}

/** Checks `worldSize ≥ 1` and `0 ≤ rank < worldSize`. */
export function requireRank(where: string, rank: unknown, worldSize: unknown): void {
  requireInteger(where, 'worldSize', worldSize, 1)
  requireInteger(where, 'rank', rank, 0)
  if ((rank as number) >= (worldSize as number)) {
    throw new ConfigError(`${where}: rank (${rank}) must be less than worldSize (${worldSize}).`, {
      argument: 'rank',
      expected: `< ${worldSize}`,
      got: rank,
    })
  }
}
