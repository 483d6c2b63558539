/**
 * Loaders keep samples as stored (bytes) and decode per batch (Note [Stored samples]):
 * every batch must be bitwise the batch of the float32 copy the loaders used to keep.
 * Each "old path" below is that float32 copy, built here the way the loaders built it.
 */
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { seededPermutation } from '@ringtrain/core'
import { idxDataset, mnistDataset, tf, type Dataset } from '@ringtrain/worker'
import { decodeRows } from '@ringtrain/worker/unstable-internals-do-not-import'

let dir: string
beforeAll(async () => {
  await tf.setBackend('cpu')
  dir = await mkdtemp(join(tmpdir(), 'ringtrain-stored-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** The batch's x and y values, as float32 arrays. */
function batchValues(dataset: Dataset, indices: number[]): { x: Float32Array; y: Float32Array } {
  const { x, y } = dataset.batch(indices)
  const single = x as tf.Tensor
  const out = { x: single.dataSync() as Float32Array, y: y.dataSync() as Float32Array }
  tf.dispose([single, y])
  return out
}

/** Rows `indices` of a float32 matrix with `rowLength` columns (the old gather). */
function rowsOf(values: Float32Array, rowLength: number, indices: number[]): Float32Array {
  const out = new Float32Array(indices.length * rowLength)
  indices.forEach((index, k) => out.set(values.subarray(index * rowLength, (index + 1) * rowLength), k * rowLength))
  return out
}

/** Bitwise equality, with the first differing element in the message. */
function expectSameBits(got: Float32Array, expected: Float32Array, what: string): void {
  expect(got.length, `${what}: length`).toBe(expected.length)
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length)
  const b = new Uint32Array(expected.buffer, expected.byteOffset, expected.length)
  const first = a.findIndex((bits, i) => bits !== b[i])
  expect(first, `${what}: first element whose bits differ (got ${got[first]}, expected ${expected[first]})`).toBe(-1)
}

/** A shuffled list of indices (fixed, so a failure repeats). */
function shuffled(length: number, count: number): number[] {
  return Array.from(seededPermutation(length, 99).subarray(0, count))
}

describe('stored samples decode bitwise as the float32 copies did', () => {
  test('mnist: one byte per pixel; every sample of both splits equals the float32 path', async () => {
    // The old path: every class file parsed into float32, the split's samples copied out, one-hot labels.
    const root = dirname(createRequire(join(process.cwd(), 'packages/worker/package.json')).resolve('mnist/package.json'))
    const perClass = Array.from({ length: 10 }, (_, d) => (JSON.parse(readFileSync(join(root, 'src', 'digits', `${d}.json`), 'utf8')) as { data: number[] }).data)
    const pixels = new Float32Array(perClass.reduce((n, data) => n + data.length, 0))
    const labels: number[] = []
    perClass.reduce((offset, data, digit) => {
      pixels.set(data, offset)
      for (let i = 0; i < data.length / 784; i++) labels.push(digit)
      return offset + data.length
    }, 0)
    const order = Array.from(seededPermutation(labels.length, 20_250_101))
    for (const [split, chosen] of [['train', order.slice(0, 8000)], ['test', order.slice(8000)]] as const) {
      const dataset = await mnistDataset({ split })
      expect(dataset.stored?.inputs.encoding.type, 'pixels kept as bytes').toBe('lookup')
      const indices = shuffled(chosen.length, chosen.length)
      const { x, y } = batchValues(dataset, indices)
      const samples = indices.map((i) => chosen[i]!)
      expectSameBits(x, rowsOf(pixels, 784, samples), `mnist ${split} pixels`)
      const oneHot = new Float32Array(samples.length * 10)
      samples.forEach((sample, k) => { oneHot[k * 10 + labels[sample]!] = 1 })
      expectSameBits(y, oneHot, `mnist ${split} labels`)
    }
  })

  test.each([
    ['raw', false, true, true],
    ['gzip', true, true, true],
    ['raw, not normalized, label values', false, false, false],
  ])('idx (%s): batches equal the float32 path', async (name, gzip, normalize, oneHot) => {
    const count = 300
    const images = Uint8Array.from({ length: count * 28 * 28 }, (_, i) => (i * 7919 + (i >> 3)) % 256)
    const labels = Uint8Array.from({ length: count }, (_, i) => (i * 31) % 10)
    const header = (magic: number, shape: number[]) => {
      const bytes = Buffer.alloc(4 + 4 * shape.length)
      bytes.writeUInt32BE(magic, 0)
      shape.forEach((dim, d) => bytes.writeUInt32BE(dim, 4 + 4 * d))
      return bytes
    }
    const write = async (file: string, bytes: Buffer) => {
      const path = join(dir, `${name}-${file}`)
      await writeFile(path, gzip ? gzipSync(bytes) : bytes)
      return path
    }
    const dataset = await idxDataset({
      images: await write('images', Buffer.concat([header(0x803, [count, 28, 28]), images])),
      labels: await write('labels', Buffer.concat([header(0x801, [count]), labels])),
      normalize,
      oneHot,
    })
    // The old path: Float32Array.from(bytes), divided by 255 in place; one-hot (or the label) as float32.
    const oldPixels = Float32Array.from(images)
    if (normalize) for (let i = 0; i < oldPixels.length; i++) oldPixels[i] = oldPixels[i]! / 255
    const oldTargets = oneHot ? new Float32Array(count * 10) : Float32Array.from(labels)
    if (oneHot) labels.forEach((label, i) => { oldTargets[i * 10 + label] = 1 })
    const indices = shuffled(count, 200)
    const { x, y } = batchValues(dataset, indices)
    expectSameBits(x, rowsOf(oldPixels, 784, indices), `${name} pixels`)
    expectSameBits(y, rowsOf(oldTargets, oneHot ? 10 : 1, indices), `${name} targets`)
    // What --serve-data sends: the stored rows, decoded on the other side, give the same values.
    const rows = dataset.stored!.read(indices)
    expect(rows.inputs.byteLength, 'one byte per pixel').toBe(indices.length * 784)
    expectSameBits(decodeRows(dataset.stored!.inputs, rows.inputs, indices.length, name), x, `${name} pixels decoded from stored rows`)
    expectSameBits(decodeRows(dataset.stored!.targets, rows.targets, indices.length, name), y, `${name} targets decoded from stored rows`)
  })

  test('a raw idx file is read per batch: a file that changed size since it was opened is E_DATA naming it', async () => {
    const header = Buffer.alloc(16)
    header.writeUInt32BE(0x803, 0)
    header.writeUInt32BE(2, 4)
    header.writeUInt32BE(2, 8)
    header.writeUInt32BE(2, 12)
    const images = join(dir, 'shrinks-images')
    await writeFile(images, Buffer.concat([header, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8])]))
    const labels = join(dir, 'shrinks-labels')
    await writeFile(labels, Buffer.concat([Buffer.from([0, 0, 8, 1, 0, 0, 0, 2]), Uint8Array.from([1, 0])]))
    const dataset = await idxDataset({ images, labels, normalize: false })
    expect(Array.from(batchValues(dataset, [1]).x)).toEqual([5, 6, 7, 8])
    await truncate(images, 20)
    expect(() => dataset.batch([1])).toThrow(`${images}: changed while in use: it had 24 bytes when opened, now 20.`)
  })
})
