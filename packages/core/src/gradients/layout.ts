/**
 * Where each tensor of a model lives in one flat `Float32Array`: the agreed layout that
 * every rank checks before step 0 (see `compareLayouts`) and that the ring all-reduce
 * treats as one buffer.
 */
import { ConfigError } from '../errors.js'
import { Fnv1a64 } from './hash.js'

/** One tensor of a layout. `offset` and `length` count float32 elements, not bytes. */
export interface GradientLayoutEntry {
  readonly name: string
  readonly shape: readonly number[]
  readonly dtype: 'float32'
  readonly offset: number
  readonly length: number
}

/** Tensors in a fixed order, packed without gaps. `length` is the total element count. */
export interface GradientLayout {
  readonly entries: readonly GradientLayoutEntry[]
  readonly length: number
  /** `hashLayout(entries)`: equal on two ranks exactly when names, shapes and order are. */
  readonly hash: string
}

/** What `createLayout` needs to know about one tensor. */
export interface GradientLayoutInput {
  readonly name: string
  readonly shape: readonly number[]
  readonly dtype?: 'float32'
}

/**
 * Packs `tensors` in the given order. Rejects with `ConfigError` (`E_CONFIG`) a duplicate
 * name, a non-float32 dtype, or a shape with a negative or fractional dimension.
 */
export function createLayout(tensors: readonly GradientLayoutInput[]): GradientLayout {
  const entries: GradientLayoutEntry[] = []
  const seen = new Set<string>()
  let offset = 0
  for (const { name, shape, dtype = 'float32' } of tensors) {
    if (seen.has(name)) {
      throw new ConfigError(`tensor name '${name}' appears twice in the model; every trainable tensor needs a unique name.`, { tensor: name })
    }
    if (dtype !== 'float32') {
      throw new ConfigError(`tensor '${name}' has dtype '${String(dtype)}'; only float32 tensors can be trained.`, { tensor: name })
    }
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new ConfigError(`tensor '${name}' has shape ${formatShape(shape)}; dimensions must be integers >= 0.`, { tensor: name })
    }
    seen.add(name)
    const length = shape.reduce((a, b) => a * b, 1)
    entries.push(Object.freeze({ name, shape: Object.freeze([...shape]), dtype: 'float32', offset, length }))
    offset += length
  }
  return Object.freeze({ entries: Object.freeze(entries), length: offset, hash: hashLayout(entries) })
}

/** Stable hash over names, shapes and dtypes in order (offsets follow from them). */
export function hashLayout(entries: readonly Pick<GradientLayoutEntry, 'name' | 'shape' | 'dtype'>[]): string {
  const hash = new Fnv1a64()
  for (const { name, shape, dtype } of entries) hash.updateString(`${name}\u0000${shape.join(',')}\u0000${dtype}\u0001`)
  return hash.digest()
}

/** `[784,512]`, the way shapes appear in error messages. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`
}

/**
 * Views of `flat` for each entry of `layout`, in layout order. The views share `flat`'s
 * memory: writing through them writes `flat`.
 */
export function splitFlat(layout: GradientLayout, flat: Float32Array): Float32Array[] {
  if (flat.length !== layout.length) {
    throw new ConfigError(`a flat buffer of ${flat.length} float32 does not fit layout ${layout.hash} of ${layout.length} float32.`, {
      expected: layout.length,
      got: flat.length,
    })
  }
  return layout.entries.map((e) => flat.subarray(e.offset, e.offset + e.length))
}
