import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type * as TF from '@tensorflow/tfjs'
import { defineTask, fileHandler, loadModel, tf } from '@ringtrain/worker'
import { Replica } from '@ringtrain/worker/unstable-internals-do-not-import'
import { disposeBatch, regressionBatch, regressionTask } from './fixtures/tiny-tasks.ts'

let root: string

beforeAll(async () => {
  await tf.setBackend('cpu')
  root = await mkdtemp(join(tmpdir(), 'ringtrain-save-model-'))
})

afterAll(async () => {
  await rm(root, { recursive: true, force: true })
})

describe('saveModel', () => {
  test('a LayersModel loads back with tf.loadLayersModel and predicts the same', async () => {
    const replica = await Replica.create(regressionTask('adam'), { seed: 5 })
    const batch = regressionBatch(0, 8)
    replica.applyGradients(replica.computeGradients(batch).gradients, 0) // saved weights are trained ones
    const dir = join(root, 'layers', 'model')
    await replica.saveModel(dir)
    expect((await readdir(dir)).sort()).toEqual(['model.json', 'weights.bin'])
    const modelJson = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'))
    expect(modelJson.weightsManifest[0].paths).toEqual(['weights.bin'])
    expect(modelJson.weightsManifest[0].weights.map((w: { name: string }) => w.name)).toEqual(replica.layout.entries.map((e) => e.name))

    const loaded = await tf.loadLayersModel(fileHandler(dir))
    const x = batch.x as TF.Tensor
    const expected = replica.predict(x)
    const got = loaded.predict(x) as TF.Tensor
    expect(Array.from(got.dataSync())).toEqual(Array.from(expected.dataSync()))
    tf.dispose([expected, got])
    loaded.dispose()
    disposeBatch(batch)
    replica.dispose()
  })

  test('replaces an existing model atomically and leaves no temporary directory', async () => {
    const parent = join(root, 'overwrite')
    const dir = join(parent, 'model')
    const first = await Replica.create(regressionTask('sgd'), { seed: 1 })
    const second = await Replica.create(regressionTask('sgd'), { seed: 2 })
    await first.saveModel(dir)
    await second.saveModel(dir)
    expect(await readdir(parent)).toEqual(['model'])
    const loaded = await tf.loadLayersModel(fileHandler(dir))
    const savedWeights = loaded.getWeights().map((w) => Array.from(w.dataSync()))
    expect(savedWeights.flat()).toEqual(Array.from(second.readWeights()))
    loaded.dispose()
    first.dispose()
    second.dispose()
  })

  test('a custom-variable model saves its weights in the weights-manifest format', async () => {
    const task = defineTask({
      name: 'custom',
      model: () => {
        const variables = { w: tf.variable(tf.tensor2d([[1, 2, 3]])), b: tf.variable(tf.tensor1d([0.5])), frozen: tf.variable(tf.scalar(7), false) }
        return { variables, apply: (x: TF.Tensor | TF.Tensor[]) => tf.add(tf.matMul(x as TF.Tensor2D, variables.w), variables.b) }
      },
      loss: 'meanSquaredError',
      optimizer: 'sgd',
      data: { train: () => ({ length: 0, inputShape: [1], targetShape: [3], batch: () => ({ x: tf.zeros([1, 1]), y: tf.zeros([1, 3]) }) }) },
    })
    const replica = await Replica.create(task)
    expect(replica.layout.entries.map((e) => e.name)).toEqual(['w', 'b'])
    expect(replica.weightsLayout.entries.map((e) => e.name)).toEqual(['w', 'b', 'frozen'])
    const dir = join(root, 'custom')
    await replica.saveModel(dir)
    const modelJson = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'))
    expect(modelJson.format).toBe('ringtrain-variables')
    const specs = modelJson.weightsManifest[0].weights
    expect(specs).toEqual([
      { name: 'w', shape: [1, 3], dtype: 'float32' },
      { name: 'b', shape: [1], dtype: 'float32' },
      { name: 'frozen', shape: [], dtype: 'float32' },
    ])
    const weights = (await loadModel(dir)) as TF.NamedTensorMap
    expect(Object.keys(weights)).toEqual(['w', 'b', 'frozen'])
    expect(Array.from(weights.w!.dataSync())).toEqual([1, 2, 3])
    expect(Array.from(weights.frozen!.dataSync())).toEqual([7])
    tf.dispose(Object.values(weights))
    replica.dispose()
  })

  test('loadModel gives the LayersModel back; bad folders fail naming the file', async () => {
    const replica = await Replica.create(regressionTask('sgd'), { seed: 3 })
    const dir = join(root, 'load')
    await replica.saveModel(dir)
    const model = await loadModel(dir)
    expect(model).toBeInstanceOf(tf.LayersModel)
    const x = tf.tensor2d([[0.5, -1, 2]])
    const got = (model as TF.LayersModel).predict(x) as TF.Tensor
    const expected = replica.predict(x)
    expect(Array.from(got.dataSync())).toEqual(Array.from(expected.dataSync()))
    tf.dispose([x, got, expected])
    ;(model as TF.LayersModel).dispose()
    replica.dispose()

    await expect(loadModel(join(root, 'nothing-here'))).rejects.toThrow(/no saved model in \S+nothing-here: could not read \S+model\.json \(ENOENT\)/)
    const truncated = join(root, 'truncated')
    await mkdir(truncated, { recursive: true })
    await writeFile(join(truncated, 'model.json'), await readFile(join(dir, 'model.json')))
    await writeFile(join(truncated, 'weights.bin'), new Uint8Array(4))
    await expect(loadModel(truncated)).rejects.toThrow(/the weight files of \S+truncated hold 4 bytes, but model\.json's manifest needs \d+; the model is incomplete\./)
  })
})
