import * as tf from '@tensorflow/tfjs'
import { DistError } from '@ringtrain/core'
import type { Batch, Dataset } from './dataset.js'

/** Samples kept as one contiguous `Float32Array` per field: row i is `[i·rowLength, (i+1)·rowLength)`. */
export interface DenseSamples {
  inputs: Float32Array
  inputShape: readonly number[]
  targets: Float32Array
  targetShape: readonly number[]
}

/** Number of elements in one sample of this shape (1 for `[]`). */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1)
}

/**
 * A {@link Dataset} over dense samples. `batch()` gathers the rows into fresh
 * `Float32Array`s and makes the tensors at call time, on whichever tfjs backend is current
 * then. No tensor is kept between calls: see Note [Tensors belong to one backend].
 *
 * `source` names the data in errors (a file path, or the loader's name).
 *
 * @throws DistError (`E_DATA`) when inputs and targets hold different numbers of samples.
 */
export function denseDataset(samples: DenseSamples, source: string): Dataset {
  const { inputs, targets } = samples
  const inputShape = Object.freeze([...samples.inputShape])
  const targetShape = Object.freeze([...samples.targetShape])
  const inputLength = elementCount(inputShape)
  const targetLength = elementCount(targetShape)
  const length = inputLength === 0 ? 0 : inputs.length / inputLength
  if (!Number.isInteger(length) || targets.length !== length * targetLength) {
    throw new DistError(
      'E_DATA',
      `${source}: inputs hold ${inputs.length} values (${length} samples of [${inputShape}]) but targets hold ` +
        `${targets.length} values; expected ${Math.floor(length) * targetLength} (samples of [${targetShape}]).`,
      { expected: Math.floor(length) * targetLength, got: targets.length },
    )
  }
  return {
    length,
    inputShape,
    targetShape,
    batch(indices: ArrayLike<number>): Batch {
      const x = gatherRows(inputs, inputLength, indices, length, source)
      const y = gatherRows(targets, targetLength, indices, length, source)
      return {
        x: tf.tensor(x, [indices.length, ...inputShape], 'float32'),
        y: tf.tensor(y, [indices.length, ...targetShape], 'float32'),
      }
    },
  }
}

// Note [Tensors belong to one backend]
// A tensor's bytes live in the backend that made it. Tensors made on cpu and then read by
// wasm kernels (or kept across a tf.setBackend) can be read wrongly or moved at a bad time,
// so loaders keep plain Float32Arrays and make tensors only inside batch(), on the
// backend current at that call. Each batch gets fresh arrays: the cpu backend keeps the
// array it is given without copying, so sharing one would let a later batch overwrite it.

/**
 * Copies rows `indices[k]` of `data` (rows of `rowLength` elements) into a fresh array,
 * one `subarray` + `set` per row.
 *
 * @throws DistError (`E_DATA`) naming the index when one is not a sample of the data set.
 */
export function gatherRows(
  data: Float32Array,
  rowLength: number,
  indices: ArrayLike<number>,
  length: number,
  source: string,
): Float32Array {
  const out = new Float32Array(indices.length * rowLength)
  for (let k = 0; k < indices.length; k++) {
    const index = indices[k]!
    if (!Number.isInteger(index) || index < 0 || index >= length) {
      throw new DistError(
        'E_DATA',
        `${source}: sample index ${index} (position ${k} of the batch) is out of range; the data set has ${length} samples.`,
        { expected: `0 … ${length - 1}`, got: index },
      )
    }
    out.set(data.subarray(index * rowLength, (index + 1) * rowLength), k * rowLength)
  }
  return out
}
