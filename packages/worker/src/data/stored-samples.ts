/**
 * Samples kept as they are stored (bytes of an image file, class labels), made into float32
 * only per batch. A data set holds two fields, inputs and targets; each field says how its
 * stored rows decode ({@link FieldEncoding}) and where they are ({@link RowSource}).
 * See Note [Stored samples].
 */
import { DistError } from '@ringtrain/core'

/**
 * How one stored row becomes float32 values:
 * - `float32`: 4 bytes per value (little-endian), copied as they are.
 * - `lookup`: 1 byte per value; byte b decodes to `Math.fround(values[b])`.
 * - `oneHot`: 1 byte per sample, a class index; decodes to `classes` values, 1 at the index.
 *
 * Plain data (numbers and strings), so that it travels in a control message as it is.
 */
export type FieldEncoding =
  | { type: 'float32' }
  | { type: 'lookup'; values: number[] }
  | { type: 'oneHot'; classes: number }

/** The shape of one decoded sample of a field, and how it is stored. */
export interface FieldLayout {
  shape: readonly number[]
  encoding: FieldEncoding
}

/** Where a field's stored rows are: `gather` copies rows `indices[k]` to `out` at `k · rowBytes`. */
export interface RowSource {
  readonly rowBytes: number
  gather(indices: ArrayLike<number>, out: Uint8Array): void
}

/** Stored bytes of some samples: rows of each field one after another, in the order asked. */
export interface StoredRows {
  inputs: Uint8Array
  targets: Uint8Array
}

/** A data set's samples as stored: what `--serve-data` sends to workers (see Dataset.stored). */
export interface StoredSamples {
  readonly inputs: FieldLayout
  readonly targets: FieldLayout
  /** Stored bytes of these samples, in this order. Indices must be samples of the data set. */
  read(indices: ArrayLike<number>): StoredRows
}

/** Number of elements in one sample of this shape (1 for `[]`). */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1)
}

/** Bytes of one stored row of a field. */
export function rowBytes(layout: FieldLayout): number {
  switch (layout.encoding.type) {
    case 'float32': return 4 * elementCount(layout.shape)
    case 'lookup': return elementCount(layout.shape)
    case 'oneHot': return 1
  }
}

/** Rows of a field in memory: row i is `bytes[i·rowBytes, (i+1)·rowBytes)`, or row `order[i]` when an order is given. */
export function memoryRows(bytes: Uint8Array, rowBytes: number, order?: ArrayLike<number>): RowSource {
  return {
    rowBytes,
    gather(indices, out) {
      for (let k = 0; k < indices.length; k++) {
        const row = order === undefined ? indices[k]! : order[indices[k]!]!
        out.set(bytes.subarray(row * rowBytes, (row + 1) * rowBytes), k * rowBytes)
      }
    },
  }
}

/** The bytes of a Float32Array, without a copy. */
export function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
}

/**
 * Decodes `count` stored rows (`bytes`, fresh and owned by the caller) into a fresh
 * Float32Array of `count × elementCount(shape)` values.
 *
 * @throws DistError (`E_DATA`) naming `source` when a stored class index is not below `classes`.
 */
export function decodeRows(layout: FieldLayout, bytes: Uint8Array, count: number, source: string): Float32Array {
  const { encoding } = layout
  switch (encoding.type) {
    case 'float32':
      // A fresh buffer from gather (offset 0): its bytes become the batch's array as they are.
      return bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) : new Float32Array(bytes.slice().buffer)
    case 'lookup': {
      const table = Float32Array.from(encoding.values)
      const out = new Float32Array(bytes.length)
      for (let i = 0; i < bytes.length; i++) out[i] = table[bytes[i]!] ?? Number.NaN
      return out
    }
    case 'oneHot': {
      const { classes } = encoding
      const out = new Float32Array(count * classes)
      for (let k = 0; k < count; k++) {
        const label = bytes[k]!
        if (label >= classes) throw new DistError('E_DATA', `${source}: sample ${k} of the batch has class ${label}; expected a class in [0, ${classes}).`, { expected: `< ${classes}`, got: label })
        out[k * classes + label] = 1
      }
      return out
    }
  }
}

// Note [Stored samples]
// ~~~~~~~~~~~~~~~~~~~~~
// A loader keeps what the file holds (uint8 pixels, uint8 labels), not float32 copies: an
// MNIST-sized training set is 47 MB of bytes instead of 188 MB of float32 pixels and a
// one-hot matrix, in every worker process. Each batch decodes its rows into fresh float32
// arrays with the same arithmetic the float32 path used (a pixel byte b normalized is
// Math.fround(b / 255) either way; a one-hot row has 1 at the label), so batches are
// bitwise the same. A `lookup` table is at most 256 values, and decoding through
// Float32Array assignment rounds exactly as storing into a Float32Array did.
