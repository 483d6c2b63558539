import { DistError } from '@ringtrain/core'
import type { Dataset } from './dataset.js'
import { allInOrder } from './all-in-order.js'
import { storedDataset } from './dense-dataset.js'
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, openIdxRows, readIdx } from './read-idx.js'
import { memoryRows, type FieldEncoding } from './stored-samples.js'

/** Arguments of {@link idxDataset}. */
export interface IdxDatasetOptions {
  /** IDX file of images, magic 0x00000803, shape [count, rows, cols]; raw or .gz. */
  images: string
  /** IDX file of labels, magic 0x00000801, shape [count]; raw or .gz. */
  labels: string
  /** Scale pixels from 0 … 255 to [0, 1] (default true). */
  normalize?: boolean
  /** Labels as one-hot vectors of `classes` values (default true), else `[1]` holding the label. */
  oneHot?: boolean
  /** Number of classes for one-hot labels (default 10). */
  classes?: number
  /** Input shape `[rows·cols]` (true) or `[rows, cols, 1]` (default false). */
  flatten?: boolean
}

/**
 * Reads a pair of MNIST-format IDX files (images and labels) into a {@link Dataset}. Pixels
 * and labels stay bytes until a batch is made (Note [Stored samples]); the pixels of a raw
 * (not gzip) images file are not even read into memory: each batch reads its rows from the
 * file.
 *
 * @throws DistError (`E_DATA`) naming the file and expected/got when a magic number,
 *   a byte length, the image and label counts, or a label (≥ `classes`) is wrong. When both
 *   files are bad, the images file's error is the one thrown.
 */
export async function idxDataset(options: IdxDatasetOptions): Promise<Dataset> {
  const { normalize = true, oneHot = true, classes = 10, flatten = false } = options
  // Both files are read at once, but an error in the images file wins over one in the
  // labels file whatever read finished first: the same bad input always reports the same error.
  const [images, labels] = await allInOrder([
    openIdxRows(options.images, IDX_IMAGES_MAGIC),
    readIdx(options.labels, IDX_LABELS_MAGIC),
  ])
  const [count = 0, rows = 0, cols = 0] = images.shape
  const labelCount = labels.shape[0] ?? 0
  if (labelCount !== count) {
    throw new DistError(
      'E_DATA',
      `${options.labels}: expected ${count} labels, one per image in ${options.images}, got ${labelCount}.`,
      { file: options.labels, expected: count, got: labelCount },
    )
  }
  if (oneHot) {
    const bad = labels.values.findIndex((label) => label >= classes)
    if (bad >= 0) {
      throw new DistError('E_DATA', `${options.labels}: label ${bad}: expected a class in [0, ${classes}), got ${labels.values[bad]}.`, {
        file: options.labels,
        item: bad,
        expected: `< ${classes}`,
        got: labels.values[bad],
      })
    }
  }
  // Byte b becomes b / 255 (normalized) or b, rounded to float32: what the float32 copy held.
  const byteValues = Array.from({ length: 256 }, (_, b) => (normalize ? b / 255 : b))
  const targets: FieldEncoding = oneHot ? { type: 'oneHot', classes } : { type: 'lookup', values: Array.from({ length: 256 }, (_, b) => b) }
  return storedDataset(
    {
      length: count,
      inputs: { shape: flatten ? [rows * cols] : [rows, cols, 1], encoding: { type: 'lookup', values: byteValues }, rows: images.rows },
      targets: { shape: [oneHot ? classes : 1], encoding: targets, rows: memoryRows(labels.values, 1) },
    },
    options.images,
  )
}
