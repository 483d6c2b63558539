import { DistError } from '@ringtrain/core'
import type { Dataset } from './dataset.js'
import { denseDataset, elementCount } from './dense-dataset.js'

/** Samples as one flat array (row after row), or as one array per sample. */
export type SampleValues = Float32Array | readonly number[] | readonly (readonly number[])[]

/** Arguments of {@link arrayDataset}. */
export interface ArrayDatasetOptions {
  /** Inputs: flat (`length × elementCount(inputShape)` values) or one row per sample. */
  inputs: SampleValues
  /** Shape of one sample's input, e.g. `[784]` or `[28, 28, 1]`. */
  inputShape: readonly number[]
  /** Targets: flat or one row per sample. */
  targets: SampleValues
  /** Shape of one sample's target, e.g. `[10]` or `[1]`. */
  targetShape: readonly number[]
}

/**
 * An in-memory {@link Dataset}. Values are copied once into a `Float32Array` per field, so
 * later changes to the caller's arrays do not reach the data set.
 *
 * @throws DistError (`E_DATA`) when a row has the wrong number of values, or inputs and
 *   targets hold different numbers of samples.
 */
export function arrayDataset(options: ArrayDatasetOptions): Dataset {
  return denseDataset(
    {
      inputs: toFloat32(options.inputs, elementCount(options.inputShape), 'inputs'),
      inputShape: options.inputShape,
      targets: toFloat32(options.targets, elementCount(options.targetShape), 'targets'),
      targetShape: options.targetShape,
    },
    'arrayDataset',
  )
}

function toFloat32(values: SampleValues, rowLength: number, field: string): Float32Array {
  if (values instanceof Float32Array) return values.slice()
  if (values.length === 0 || typeof values[0] === 'number') return Float32Array.from(values as readonly number[])
  const rows = values as readonly (readonly number[])[]
  const out = new Float32Array(rows.length * rowLength)
  rows.forEach((row, i) => {
    if (!Array.isArray(row) || row.length !== rowLength) {
      throw new DistError(
        'E_DATA',
        `arrayDataset: ${field} row ${i}: expected ${rowLength} values, got ${Array.isArray(row) ? row.length : typeof row}.`,
        { field, row: i, expected: rowLength, got: Array.isArray(row) ? row.length : typeof row },
      )
    }
    out.set(row, i * rowLength)
  })
  return out
}
