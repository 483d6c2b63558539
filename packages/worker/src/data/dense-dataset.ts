import * as tf from '@tensorflow/tfjs'
import { DistError } from '@ringtrain/core'
import type { Batch, Dataset } from './dataset.js'
import { bytesOf, decodeRows, elementCount, memoryRows, type FieldLayout, type RowSource, type StoredSamples } from './stored-samples.js'

export { elementCount } from './stored-samples.js'

/** Samples kept as one contiguous `Float32Array` per field: row i is `[i·rowLength, (i+1)·rowLength)`. */
export interface DenseSamples {
  inputs: Float32Array
  inputShape: readonly number[]
  targets: Float32Array
  targetShape: readonly number[]
}

/**
 * A {@link Dataset} over dense float32 samples.
 * `source` names the data in errors (a file path, or the loader's name).
 *
 * @throws DistError (`E_DATA`) when inputs and targets hold different numbers of samples.
 */
export function denseDataset(samples: DenseSamples, source: string): Dataset {
  const { inputs, targets } = samples
  const inputLength = elementCount(samples.inputShape)
  const targetLength = elementCount(samples.targetShape)
  const length = inputLength === 0 ? 0 : inputs.length / inputLength
  if (!Number.isInteger(length) || targets.length !== length * targetLength) {
    throw new DistError(
      'E_DATA',
      `${source}: inputs hold ${inputs.length} values (${length} samples of [${samples.inputShape}]) but targets hold ` +
        `${targets.length} values; expected ${Math.floor(length) * targetLength} (samples of [${samples.targetShape}]).`,
      { expected: Math.floor(length) * targetLength, got: targets.length },
    )
  }
  const float32 = { type: 'float32' } as const
  return storedDataset({
    length,
    inputs: { shape: samples.inputShape, encoding: float32, rows: memoryRows(bytesOf(inputs), 4 * inputLength) },
    targets: { shape: samples.targetShape, encoding: float32, rows: memoryRows(bytesOf(targets), 4 * targetLength) },
  }, source)
}

/** A field of a {@link storedDataset}: its layout and where its rows are. */
export interface StoredField extends FieldLayout {
  rows: RowSource
}

/**
 * A {@link Dataset} over stored samples (Note [Stored samples]). `batch()` gathers the
 * stored rows, decodes them into fresh `Float32Array`s and makes the tensors at call time, on
 * whichever tfjs backend is current then. No tensor is kept between calls: see
 * Note [Tensors belong to one backend].
 */
export function storedDataset(fields: { length: number; inputs: StoredField; targets: StoredField }, source: string): Dataset {
  const { length } = fields
  const inputs = { ...fields.inputs, shape: Object.freeze([...fields.inputs.shape]) }
  const targets = { ...fields.targets, shape: Object.freeze([...fields.targets.shape]) }
  const stored: StoredSamples = {
    inputs: { shape: inputs.shape, encoding: inputs.encoding },
    targets: { shape: targets.shape, encoding: targets.encoding },
    read(indices) {
      checkIndices(indices, length, source)
      return { inputs: gather(inputs.rows, indices), targets: gather(targets.rows, indices) }
    },
  }
  return {
    length,
    inputShape: inputs.shape,
    targetShape: targets.shape,
    stored,
    batch(indices: ArrayLike<number>): Batch {
      const rows = stored.read(indices)
      const x = decodeRows(inputs, rows.inputs, indices.length, source)
      const y = decodeRows(targets, rows.targets, indices.length, source)
      return {
        x: tf.tensor(x, [indices.length, ...inputs.shape], 'float32'),
        y: tf.tensor(y, [indices.length, ...targets.shape], 'float32'),
      }
    },
  }
}

function gather(rows: RowSource, indices: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(indices.length * rows.rowBytes)
  rows.gather(indices, out)
  return out
}

// Note [Tensors belong to one backend]
// A tensor's bytes live in the backend that made it. Tensors made on cpu and then read by
// wasm kernels (or kept across a tf.setBackend) can be read wrongly or moved at a bad time,
// so loaders keep plain arrays and make tensors only inside batch(), on the
// backend current at that call. Each batch gets fresh arrays: the cpu backend keeps the
// array it is given without copying, so sharing one would let a later batch overwrite it.

/**
 * @throws DistError (`E_DATA`) naming the index when one is not a sample of the data set.
 */
export function checkIndices(indices: ArrayLike<number>, length: number, source: string): void {
  for (let k = 0; k < indices.length; k++) {
    const index = indices[k]!
    if (!Number.isInteger(index) || index < 0 || index >= length) {
      throw new DistError(
        'E_DATA',
        `${source}: sample index ${index} (position ${k} of the batch) is out of range; the data set has ${length} samples.`,
        { expected: `0 … ${length - 1}`, got: index },
      )
    }
  }
}
