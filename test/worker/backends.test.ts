/**
 * Backend selection, the start-up self-test, and training end to end on wasm with the
 * training-kernel pack against the same training on cpu.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { cudaVisibleDevicesFor, selectBackend, tf } from '@ringtrain/worker'
import { registerTrainingKernels, selfTest } from '@ringtrain/worker/unstable-internals-do-not-import'
import { relativeError, seeded } from './kernels-oracle.js'

describe('selectBackend', () => {
  test('rejects --backend tensorflow with E_BACKEND and what to install when tfjs-node is absent', async () => {
    const error = await selectBackend('tensorflow').catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'E_BACKEND' })
    expect((error as Error).message).toMatch(/@tensorflow\/tfjs-node-gpu.*CUDA 11\.2 \+ cuDNN 8\.1 for tfjs-node-gpu.*--backend wasm/)
  })

  test('rejects --backend webgpu with E_BACKEND naming the missing packages', async () => {
    const error = await selectBackend('webgpu').catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'E_BACKEND' })
    expect((error as Error).message).toBe("--backend webgpu: @tensorflow/tfjs-backend-webgpu and webgpu are not installed. Install '@tensorflow/tfjs-backend-webgpu@4.22.0' and 'webgpu' (Dawn for Node), or use --backend wasm.")
  })

  test('rejects an unknown name with a ConfigError listing the valid ones', async () => {
    await expect(selectBackend('tpu')).rejects.toMatchObject({ name: 'ConfigError', code: 'E_CONFIG', message: "--backend must be one of auto, tensorflow, webgpu, wasm, cpu; got 'tpu'." })
  })

  test('auto falls back to wasm here and registers the pack', async () => {
    const selected = await selectBackend('auto')
    expect(selected.name).toBe('wasm')
    expect(tf.getBackend()).toBe('wasm')
    expect(selected.description).toMatch(/training-kernel pack \(9 kernels\)/)
    expect(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm')).toBeDefined()
  })
})

test.each([[0, 4, '0'], [3, 4, '3'], [5, 4, '1'], [2, 0, '']])('cudaVisibleDevicesFor(%i, %i) is %j', (localRank, gpus, expected) => {
  expect(cudaVisibleDevicesFor(localRank, gpus)).toBe(expected)
})

test('cudaVisibleDevicesFor rejects a negative local rank', () => {
  expect(() => cudaVisibleDevicesFor(-1, 2)).toThrow(expect.objectContaining({ code: 'E_CONFIG', message: 'localRank (-1) must be a non-negative integer.' }))
})

describe('on wasm with the pack', () => {
  beforeAll(async () => { await selectBackend('wasm') })

  // Guard: tensors made on cpu and read by wasm kernels can arrive corrupted (an int32 →
  // float32 cast made on cpu reached wasm as 1.4e-45, the int 1 read as float bits).
  test('data created on the worker backend reads back right', () => {
    expect(tf.getBackend()).toBe('wasm')
    const [cast, oneHot, filled] = tf.tidy(() => [
      tf.cast(tf.tensor1d([1, 2, 3], 'int32'), 'float32').dataSync(),
      tf.oneHot(tf.tensor1d([2, 0], 'int32'), 3).dataSync(),
      tf.add(tf.fill([2], 1.5), tf.scalar(1)).dataSync(),
    ])
    expect(Array.from(cast!)).toEqual([1, 2, 3]) // not [1.4e-45, 2.8e-45, 4.2e-45]
    expect(Array.from(oneHot!)).toEqual([0, 0, 1, 1, 0, 0])
    expect(Array.from(filled!)).toEqual([2.5, 2.5])
  })

  test('selfTest passes', async () => {
    await expect(selfTest()).resolves.toBeUndefined()
  })

  test('selfTest rejects with E_BACKEND naming the check when MaxPoolGrad is stock wasm’s', async () => {
    const pack = registerTrainingKernels('wasm')
    pack.unregister() // stock wasm: MaxPoolGrad drops all-negative windows, conv gradients missing
    const mine = registerTrainingKernels('wasm')
    const packMaxPoolGrad = tf.getKernel(tf.MaxPoolGrad, 'wasm')!
    mine.unregister()
    const stockMaxPoolGrad = tf.getKernel(tf.MaxPoolGrad, 'wasm')!
    registerTrainingKernels('wasm')
    tf.unregisterKernel(tf.MaxPoolGrad, 'wasm')
    tf.registerKernel(stockMaxPoolGrad)
    try {
      await expect(selfTest()).rejects.toMatchObject({
        code: 'E_BACKEND',
        message: expect.stringMatching(/^backend self-test failed on 'wasm': maxPool gradient on negative inputs is off by 1\.00 \(relative\) at element \d+: got 0, expected 1/),
      })
    } finally {
      tf.unregisterKernel(tf.MaxPoolGrad, 'wasm')
      tf.registerKernel(packMaxPoolGrad)
    }
  })
})

/** Trains `build()` for `steps` Adam steps on `backendName` from the same seeded weights and data. */
async function trainOn(backendName: 'cpu' | 'wasm', build: () => tf.LayersModel, input: { readonly shape: readonly number[]; readonly ids?: number }, steps: number) {
  await tf.setBackend(backendName)
  const model = build()
  model.setWeights(model.getWeights().map((w, i) => tf.tensor(seeded(w.size, 40 + i).map((v) => v * 0.3), w.shape)))
  const batch = input.shape[0]!
  const xs = input.ids ? tf.tensor(Int32Array.from(seeded(batch * input.shape[1]!, 50), (v) => Math.floor((v + 1) * input.ids! / 2)), [...input.shape], 'int32')
    : tf.tensor(seeded(input.shape.reduce((a, b) => a * b, 1), 50), [...input.shape])
  const labels = tf.oneHot(tf.tensor1d(Int32Array.from({ length: batch }, (_, i) => (i * 3) % 10), 'int32'), 10)
  const optimizer = tf.train.adam(0.01)
  const losses: number[] = []
  for (let step = 0; step < steps; step++) {
    const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, model.apply(xs) as tf.Tensor) as tf.Scalar)
    optimizer.applyGradients(grads as never)
    losses.push(value.dataSync()[0]!)
    tf.dispose([value, ...Object.values(grads)])
  }
  const weights = Float32Array.from(model.getWeights().flatMap((w) => Array.from(w.dataSync())))
  tf.dispose([xs, labels]); optimizer.dispose(); model.dispose()
  return { losses, weights }
}

describe('training on wasm+pack matches cpu', () => {
  beforeAll(async () => { await selectBackend('wasm') })
  afterAll(async () => { await tf.setBackend('wasm') })

  test.each([
    ['a small CNN (conv → maxpool → conv → maxpool → dense)', () => tf.sequential({ layers: [
      tf.layers.conv2d({ inputShape: [12, 12, 1], filters: 4, kernelSize: 3, activation: 'relu' }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 1, padding: 'same' }), // no ReLU: negative pooling windows
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(), tf.layers.dense({ units: 10 })] }), { shape: [8, 12, 12, 1] }],
    ['separable, depthwise and strided convs', () => tf.sequential({ layers: [
      tf.layers.separableConv2d({ inputShape: [9, 9, 2], filters: 4, kernelSize: 3, depthMultiplier: 2, padding: 'same' }),
      tf.layers.depthwiseConv2d({ kernelSize: 3, strides: 2, depthMultiplier: 1 }),
      tf.layers.conv2dTranspose({ filters: 3, kernelSize: 2, strides: 2 }),
      tf.layers.flatten(), tf.layers.dense({ units: 10 })] }), { shape: [4, 9, 9, 2] }],
    ['an embedding and a conv1d', () => tf.sequential({ layers: [
      tf.layers.embedding({ inputDim: 20, outputDim: 6, inputLength: 7 }),
      tf.layers.conv1d({ filters: 5, kernelSize: 3 }), tf.layers.flatten(), tf.layers.dense({ units: 10 })] }), { shape: [6, 7], ids: 20 }],
  ] as const)('%s, 4 Adam steps', async (_label, build, input) => {
    const reference = await trainOn('cpu', build, input, 4)
    const got = await trainOn('wasm', build, input, 4)
    // 4 steps compound float32 rounding of different summation orders: 1e-4 of the weights' scale.
    expect(relativeError(got.weights, reference.weights)).toBeLessThanOrEqual(1e-4)
    expect(got.losses.at(-1)!).toBeLessThan(got.losses[0]!) // it trains
  })
})
