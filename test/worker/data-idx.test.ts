import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { idxDataset, tf } from '@ringtrain/worker'

let dir: string
beforeAll(async () => {
  await tf.setBackend('cpu')
  dir = await mkdtemp(join(tmpdir(), 'ringtrain-idx-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Writes an IDX file of unsigned bytes: magic 0x000008<dims>, big-endian uint32 dims, then the values. */
async function writeIdx(name: string, shape: number[], values: number[], options: { gzip?: boolean; magic?: number } = {}) {
  const header = Buffer.alloc(4 + 4 * shape.length)
  header.writeUInt32BE(options.magic ?? 0x0800 + shape.length, 0)
  shape.forEach((dim, d) => header.writeUInt32BE(dim, 4 + 4 * d))
  const bytes = Buffer.concat([header, Uint8Array.from(values)])
  const path = join(dir, name)
  await writeFile(path, options.gzip ? gzipSync(bytes) : bytes)
  return path
}

// 3 images of 2×2: image i has pixels [i, 85, 170, 255]; labels 2, 0, 9
const pixels = [0, 85, 170, 255, 1, 85, 170, 255, 2, 85, 170, 255]
const labels = [2, 0, 9]

async function rejection(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise
  } catch (error) {
    return { code: (error as { code: string }).code, message: (error as Error).message }
  }
  throw new Error('expected idxDataset to reject')
}

describe('idxDataset', () => {
  test.each([false, true])('reads images and labels (gzip: %s), normalized and one-hot', async (gzip) => {
    const suffix = gzip ? '.gz' : ''
    const dataset = await idxDataset({
      images: await writeIdx(`images-${gzip}-idx3-ubyte${suffix}`, [3, 2, 2], pixels, { gzip }),
      labels: await writeIdx(`labels-${gzip}-idx1-ubyte${suffix}`, [3], labels, { gzip }),
    })
    expect(dataset.length).toBe(3)
    expect(dataset.inputShape).toEqual([2, 2, 1])
    expect(dataset.targetShape).toEqual([10])
    const { x, y } = dataset.batch([2, 0])
    const image = x as ReturnType<typeof tf.tensor>
    expect(image.shape).toEqual([2, 2, 2, 1])
    expect(Array.from(image.dataSync())).toEqual([2, 85, 170, 255, 0, 85, 170, 255].map((p) => Math.fround(p / 255)))
    expect(Array.from(tf.argMax(y, 1).dataSync())).toEqual([9, 2])
    tf.dispose([image, y])
  })

  test('flatten, raw pixels and label values', async () => {
    const dataset = await idxDataset({
      images: await writeIdx('flat-images', [3, 2, 2], pixels),
      labels: await writeIdx('flat-labels', [3], labels),
      flatten: true,
      normalize: false,
      oneHot: false,
    })
    expect(dataset.inputShape).toEqual([4])
    expect(dataset.targetShape).toEqual([1])
    const { x, y } = dataset.batch([1])
    expect(Array.from((x as ReturnType<typeof tf.tensor>).dataSync())).toEqual([1, 85, 170, 255])
    expect(Array.from(y.dataSync())).toEqual([0])
    tf.dispose([x as ReturnType<typeof tf.tensor>, y])
  })

  test('wrong magic numbers, lengths, counts and labels are E_DATA naming the file', async () => {
    const images = await writeIdx('ok-images', [3, 2, 2], pixels)
    const labelsFile = await writeIdx('ok-labels', [3], labels)
    const swapped = await rejection(idxDataset({ images: labelsFile, labels: images }))
    expect(swapped).toEqual({
      code: 'E_DATA',
      message: `${labelsFile}: expected IDX magic number 0x00000803 (unsigned bytes, 3 dimensions), got 0x00000801.`,
    })
    const truncated = await writeIdx('truncated-images', [3, 2, 2], pixels.slice(0, 10))
    expect((await rejection(idxDataset({ images: truncated, labels: labelsFile }))).message).toBe(
      `${truncated}: expected 28 bytes for dimensions [3, 2, 2], got 26 bytes.`,
    )
    const fewer = await writeIdx('fewer-labels', [2], [1, 2])
    expect((await rejection(idxDataset({ images, labels: fewer }))).message).toBe(
      `${fewer}: expected 3 labels, one per image in ${images}, got 2.`,
    )
    const big = await writeIdx('big-labels', [3], [1, 12, 2])
    expect((await rejection(idxDataset({ images, labels: big }))).message).toBe(
      `${big}: label 1: expected a class in [0, 10), got 12.`,
    )
    // Both files bad: the images file's error, even when the labels file fails first (a
    // large gzip takes a while to inflate, a tiny raw file fails at once). Not a race.
    const slowBadImages = await writeIdx('slow-bad-images.gz', [3, 2, 2], new Array(4_000_000).fill(7), { gzip: true, magic: 0x0801 })
    expect(await rejection(idxDataset({ images: slowBadImages, labels: images }))).toEqual({
      code: 'E_DATA',
      message: `${slowBadImages}: expected IDX magic number 0x00000803 (unsigned bytes, 3 dimensions), got 0x00000801.`,
    })
    const broken = join(dir, 'broken.gz')
    await writeFile(broken, Uint8Array.from([0x1f, 0x8b, 1, 2, 3]))
    expect((await rejection(idxDataset({ images: broken, labels: labelsFile }))).message).toMatch(
      new RegExp(`^${broken}: starts like gzip but cannot be decompressed \\(.+\\)\\.$`),
    )
  })
})
