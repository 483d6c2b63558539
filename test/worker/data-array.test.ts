import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { arrayDataset, tf, type Dataset } from '@ringtrain/worker'

beforeAll(async () => {
  await tf.setBackend('cpu')
})

function read(dataset: Dataset, indices: number[]) {
  const { x, y } = dataset.batch(indices)
  const single = x as ReturnType<typeof tf.tensor>
  const out = { x: Array.from(single.dataSync()), xShape: single.shape, y: Array.from(y.dataSync()), yShape: y.shape }
  tf.dispose([single, y])
  return out
}

describe('arrayDataset', () => {
  const rows = [
    [1, 2],
    [3, 4],
    [5, 6],
  ]

  test('gathers rows in the order asked, with the batch dim first', () => {
    const dataset = arrayDataset({ inputs: rows, inputShape: [2], targets: [[0], [1], [2]], targetShape: [1] })
    expect(dataset.length).toBe(3)
    expect(read(dataset, [2, 0, 2])).toEqual({ x: [5, 6, 1, 2, 5, 6], xShape: [3, 2], y: [2, 0, 2], yShape: [3, 1] })
  })

  test('takes flat Float32Arrays and copies them', () => {
    const inputs = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8])
    const dataset = arrayDataset({ inputs, inputShape: [2, 2], targets: [7, 9], targetShape: [] })
    inputs.fill(0) // the data set kept its own copy
    expect(read(dataset, [1])).toEqual({ x: [5, 6, 7, 8], xShape: [1, 2, 2], y: [9], yShape: [1] })
  })

  test('an empty batch is a [0, …] tensor', () => {
    const dataset = arrayDataset({ inputs: rows, inputShape: [2], targets: [0, 1, 2], targetShape: [1] })
    expect(read(dataset, [])).toEqual({ x: [], xShape: [0, 2], y: [], yShape: [0, 1] })
  })

  test('rejects rows of the wrong length, mismatched counts and indices out of range', () => {
    const bad = () => arrayDataset({ inputs: [[1, 2], [3]], inputShape: [2], targets: [0, 1], targetShape: [1] })
    expect(bad).toThrow('arrayDataset: inputs row 1: expected 2 values, got 1.')
    const mismatch = () => arrayDataset({ inputs: rows, inputShape: [2], targets: [0, 1], targetShape: [1] })
    expect(mismatch).toThrow(
      'arrayDataset: inputs hold 6 values (3 samples of [2]) but targets hold 2 values; expected 3 (samples of [1]).',
    )
    const dataset = arrayDataset({ inputs: rows, inputShape: [2], targets: [0, 1, 2], targetShape: [1] })
    try {
      dataset.batch([0, 3])
      expect.unreachable()
    } catch (error) {
      expect(error).toMatchObject({
        code: 'E_DATA',
        message: 'arrayDataset: sample index 3 (position 1 of the batch) is out of range; the data set has 3 samples.',
      })
    }
  })
})

describe('tensors are made on the backend current at batch() time', () => {
  // Guard for "tensors made on one backend and read by another can be corrupted": a data
  // set made while one backend was current must not hand out tensors of that backend later.
  const other = 'data-test-cpu-2'
  beforeAll(() => {
    tf.registerBackend(other, tf.findBackendFactory('cpu'))
  })
  afterAll(async () => {
    await tf.setBackend('cpu')
    tf.removeBackend(other)
  })

  test('after tf.setBackend, batch() tensors live in the new backend and hold the right data', async () => {
    const dataset = arrayDataset({ inputs: [[1, 2], [3, 4]], inputShape: [2], targets: [0, 1], targetShape: [1] })
    for (const name of [other, 'cpu', other, 'cpu']) {
      await tf.setBackend(name)
      expect(tf.getBackend()).toBe(name)
      const { x, y } = dataset.batch([1, 0])
      const xTensor = x as ReturnType<typeof tf.tensor>
      // the engine records which backend instance holds each tensor's bytes
      const info = (tf.engine().state.tensorInfo as WeakMap<object, { backend: unknown }>).get(xTensor.dataId)
      expect(info?.backend).toBe(tf.engine().findBackend(name))
      expect(Array.from(xTensor.dataSync())).toEqual([3, 4, 1, 2])
      expect(Array.from(y.dataSync())).toEqual([1, 0])
      tf.dispose([xTensor, y])
    }
  })
})
