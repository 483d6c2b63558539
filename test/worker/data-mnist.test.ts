import { createHash } from 'node:crypto'
import { beforeAll, describe, expect, test } from 'vitest'
import { mnistDataset, tf, type Dataset } from '@ringtrain/worker'

beforeAll(async () => {
  await tf.setBackend('cpu')
})

function everything(dataset: Dataset): { pixels: Float32Array; labels: number[] } {
  const { x, y } = dataset.batch(Array.from({ length: dataset.length }, (_, i) => i))
  const images = x as ReturnType<typeof tf.tensor>
  const labels = tf.argMax(y, 1)
  const out = { pixels: images.dataSync() as Float32Array, labels: Array.from(labels.dataSync()) }
  tf.dispose([images, y, labels])
  return out
}

function imageHashes(pixels: Float32Array): Set<string> {
  const hashes = new Set<string>()
  for (let i = 0; i < pixels.length; i += 784) {
    hashes.add(createHash('sha1').update(pixels.subarray(i, i + 784)).digest('hex'))
  }
  return hashes
}

describe('mnistDataset', () => {
  test('8000 train and 2000 test digits: shapes, pixel range, every class, disjoint', async () => {
    const train = await mnistDataset({ split: 'train' })
    const test = await mnistDataset({ split: 'test' })
    expect([train.length, test.length]).toEqual([8000, 2000])
    expect(train.inputShape).toEqual([784])
    expect(train.targetShape).toEqual([10])

    const a = everything(train)
    const b = everything(test)
    for (const { pixels } of [a, b]) {
      let min = Infinity
      let max = -Infinity
      for (const p of pixels) {
        min = Math.min(min, p)
        max = Math.max(max, p)
      }
      expect([min, max]).toEqual([0, 1])
    }
    // label distribution: every digit present, none far from its 1/10 share
    for (const { labels } of [a, b]) {
      const perClass = new Array<number>(10).fill(0)
      for (const label of labels) perClass[label]!++
      for (const count of perClass) expect(count / labels.length).toBeGreaterThan(0.07)
      for (const count of perClass) expect(count / labels.length).toBeLessThan(0.14)
    }
    // no test image appears in the training set
    const trainImages = imageHashes(a.pixels)
    expect([...imageHashes(b.pixels)].filter((hash) => trainImages.has(hash))).toEqual([])
  })

  test('deterministic; counts take a prefix; [28, 28, 1] without flatten', async () => {
    const small = everything(await mnistDataset({ split: 'train', trainCount: 100 }))
    const full = everything(await mnistDataset({ split: 'train' }))
    expect(small.labels).toEqual(full.labels.slice(0, 100))
    expect(Array.from(small.pixels)).toEqual(Array.from(full.pixels.subarray(0, 100 * 784)))
    const images = await mnistDataset({ split: 'test', testCount: 5, flatten: false })
    expect([images.length, images.inputShape]).toEqual([5, [28, 28, 1]])
  })

  test('a count beyond the split is a ConfigError', async () => {
    await expect(mnistDataset({ split: 'test', testCount: 2001 })).rejects.toThrow(
      "mnistDataset: testCount (2001) must be an integer in [0, 2000] for split 'test'.",
    )
  })
})
