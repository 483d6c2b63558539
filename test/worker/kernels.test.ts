/**
 * The training-kernel pack on wasm, kernel by kernel, against tfjs-backend-cpu's stock
 * kernels (the oracle; ≤ 1e-5 norm-relative error) over shapes, strides, paddings and
 * channel counts in NHWC. Where cpu has no dilation support (conv2d gradients; its depthwise
 * gradients ignore dilations), the adjoint identity ⟨conv(x,W), dy⟩ = ⟨W, dW⟩ = ⟨x, dx⟩ is
 * the oracle instead.
 */
import { beforeAll, describe, expect, test, vi } from 'vitest'
import { selectBackend, tf } from '@ringtrain/worker'
import { adamUpdateConfig, ADAM_UPDATE, registerTrainingKernels, swapOperands, useFusedAdam } from '@ringtrain/worker/unstable-internals-do-not-import'
import { dot, relativeError, runOn, seeded, sizeOf } from './kernels-oracle.js'

const TOLERANCE = 1e-5

beforeAll(async () => {
  await selectBackend('wasm', { trainingKernels: false })
  registerTrainingKernels('wasm') // wasm only: cpu keeps its stock kernels as the oracle
})

type Pad = 'same' | 'valid'
interface ConvCase { x: [number, number, number, number]; filter: [number, number, number, number]; strides: number | [number, number]; pad: Pad; dilations?: number }

// batch, odd and even sizes, 1×1 / 3×3 / non-square filters, channel counts 1…5, strides 1, 2 and mixed.
const convCases: ConvCase[] = [
  { x: [1, 5, 5, 1], filter: [3, 3, 1, 2], strides: 1, pad: 'valid' },
  { x: [2, 6, 7, 3], filter: [3, 3, 3, 4], strides: 1, pad: 'same' },
  { x: [3, 8, 8, 2], filter: [2, 3, 2, 5], strides: 2, pad: 'same' },
  { x: [2, 9, 7, 4], filter: [3, 2, 4, 3], strides: [2, 1], pad: 'valid' },
  { x: [2, 5, 5, 3], filter: [1, 1, 3, 4], strides: 1, pad: 'valid' },
  { x: [1, 7, 7, 5], filter: [5, 5, 5, 2], strides: 3, pad: 'same' },
  { x: [4, 4, 4, 1], filter: [3, 3, 1, 1], strides: 1, pad: 'same' },
  { x: [2, 10, 3, 2], filter: [3, 1, 2, 3], strides: [1, 2], pad: 'same' },
]
const dilatedCases: ConvCase[] = [
  { x: [2, 9, 9, 3], filter: [3, 3, 3, 2], strides: 1, pad: 'same', dilations: 2 },
  { x: [1, 11, 8, 2], filter: [2, 3, 2, 4], strides: 1, pad: 'valid', dilations: 3 },
]
const name = (c: ConvCase) => `x ${c.x} filter ${c.filter} strides ${c.strides} ${c.pad}${c.dilations ? ` dilations ${c.dilations}` : ''}`

function geometry(c: ConvCase, depthwise: boolean) {
  return tf.backend_util.computeConv2DInfo(c.x, c.filter, c.strides, c.dilations ?? 1, c.pad, undefined, depthwise)
}

describe.each([false, true])('convolution gradients (depthwise %s)', (depthwise) => {
  const filterKernel = depthwise ? tf.DepthwiseConv2dNativeBackpropFilter : tf.Conv2DBackpropFilter
  const inputKernel = depthwise ? tf.DepthwiseConv2dNativeBackpropInput : tf.Conv2DBackpropInput
  const cases = depthwise ? convCases.map((c) => ({ ...c, filter: [c.filter[0], c.filter[1], c.x[3], c.filter[3] % 3 || 1] as ConvCase['filter'] })) : convCases

  test.each(cases.map((c, seed) => [name(c), c, seed] as const))('%s matches cpu', async (_label, c, seed) => {
    const g = geometry(c, depthwise)
    const x = seeded(sizeOf(c.x), seed)
    const filter = seeded(sizeOf(c.filter), seed + 100)
    const dyShape = g.outShape
    const dy = seeded(sizeOf(dyShape), seed + 200)
    const attrsF = { strides: c.strides, pad: c.pad, dilations: 1, dataFormat: 'NHWC', filterShape: c.filter }
    const attrsI = { strides: c.strides, pad: c.pad, dilations: 1, dataFormat: 'NHWC', inputShape: c.x }
    const filterInputs = { x: { values: x, shape: c.x }, dy: { values: dy, shape: dyShape } }
    const inputInputs = { dy: { values: dy, shape: dyShape }, filter: { values: filter, shape: c.filter } }
    for (const [kernel, inputs, attrs] of [[filterKernel, filterInputs, attrsF], [inputKernel, inputInputs, attrsI]] as const) {
      const expected = await runOn('cpu', kernel, inputs, attrs)
      const got = await runOn('wasm', kernel, inputs, attrs)
      expect(got.shape, kernel).toEqual(expected.shape)
      expect(relativeError(got.values, expected.values), `${kernel} seed ${seed}`).toBeLessThanOrEqual(TOLERANCE)
    }
  })

  test.each([...cases, ...dilatedCases].map((c, seed) => [name(c), c, seed] as const))('%s satisfies the adjoint identity', async (_label, c, seed) => {
    const filterShape = depthwise ? [c.filter[0], c.filter[1], c.x[3], c.filter[3] % 3 || 1] as ConvCase['filter'] : c.filter
    const g = tf.backend_util.computeConv2DInfo(c.x, filterShape, c.strides, c.dilations ?? 1, c.pad, undefined, depthwise)
    if ((c.dilations ?? 1) > 1 && (c.strides !== 1)) return // tfjs forbids strides and dilations both > 1
    const x = seeded(sizeOf(c.x), seed + 300)
    const filter = seeded(sizeOf(filterShape), seed + 400)
    const dy = seeded(sizeOf(g.outShape), seed + 500)
    const forward = await runOn('wasm', depthwise ? tf.DepthwiseConv2dNative : tf.Conv2D,
      { x: { values: x, shape: c.x }, filter: { values: filter, shape: filterShape } },
      { strides: c.strides, pad: c.pad, dilations: c.dilations ?? 1, dataFormat: 'NHWC' })
    const dW = await runOn('wasm', filterKernel, { x: { values: x, shape: c.x }, dy: { values: dy, shape: g.outShape } },
      { strides: c.strides, pad: c.pad, dilations: c.dilations ?? 1, filterShape })
    const dx = await runOn('wasm', inputKernel, { dy: { values: dy, shape: g.outShape }, filter: { values: filter, shape: filterShape } },
      { strides: c.strides, pad: c.pad, dilations: c.dilations ?? 1, inputShape: c.x })
    const reference = dot(forward.values, dy)
    const scale = Math.sqrt(dot(forward.values, forward.values) * dot(dy, dy)) // Cauchy–Schwarz bound on |reference|
    expect(Math.abs(dot(filter, dW.values) - reference) / scale, 'filter gradient').toBeLessThanOrEqual(TOLERANCE)
    expect(Math.abs(dot(x, dx.values) - reference) / scale, 'input gradient').toBeLessThanOrEqual(TOLERANCE)
  })
})

test.each([
  { x: [2, 6, 6, 3], size: 2, strides: 2, pad: 'valid' },
  { x: [1, 7, 5, 2], size: 3, strides: 2, pad: 'same' },
  { x: [3, 5, 5, 4], size: 3, strides: 1, pad: 'same' },
  { x: [2, 8, 8, 1], size: [2, 3], strides: [2, 1], pad: 'valid' },
] as const)('MaxPoolGrad $x size $size strides $strides $pad matches cpu, including windows of values all ≤ 0', async (c) => {
  for (const [label, shift] of [['mixed signs', 0], ['all negative', -2], ['all zero', 'zero']] as const) {
    const input = seeded(sizeOf([...c.x]), 7).map((v) => (shift === 'zero' ? 0 : v + shift))
    // Distinct values except in the all-zero case, where ties go to the first maximum on both backends.
    const attrs = { filterSize: c.size, strides: c.strides, pad: c.pad, dimRoundingMode: undefined }
    const output = await runOn('cpu', tf.MaxPool, { x: { values: input, shape: [...c.x] } }, attrs)
    const dy = seeded(output.values.length, 8)
    const inputs = { dy: { values: dy, shape: output.shape }, input: { values: input, shape: [...c.x] }, output: { values: output.values, shape: output.shape } }
    const expected = await runOn('cpu', tf.MaxPoolGrad, inputs, attrs)
    const got = await runOn('wasm', tf.MaxPoolGrad, inputs, attrs)
    expect(relativeError(got.values, expected.values), label).toBeLessThanOrEqual(TOLERANCE)
  }
})

test.each([
  { x: [6, 3], ids: [0, 2, 2, 5, -1, 1], numSegments: 4 },
  { x: [6, 3, 4], ids: [1, 0, 1, 3, 3, 3], numSegments: 5 },
  { x: [50, 16], ids: Array.from({ length: 50 }, (_, i) => (i * 7) % 11), numSegments: 11 },
])('UnsortedSegmentSum x $x into $numSegments segments matches cpu (out-of-range ids dropped)', async (c) => {
  const inputs = { x: { values: seeded(sizeOf(c.x), 9), shape: c.x }, segmentIds: { values: Int32Array.from(c.ids), shape: [c.x[0]!], dtype: 'int32' as const } }
  const expected = await runOn('cpu', tf.UnsortedSegmentSum, inputs, { numSegments: c.numSegments })
  const got = await runOn('wasm', tf.UnsortedSegmentSum, inputs, { numSegments: c.numSegments })
  expect(got.shape).toEqual(expected.shape)
  expect(relativeError(got.values, expected.values)).toBeLessThanOrEqual(TOLERANCE)
})

test.each([
  { a: [5, 7], b: [7, 3] },
  { a: [2, 4, 6], b: [2, 6, 5] },
  { a: [3, 4, 6], b: [1, 6, 2] },
  // shapes where a transposed product is computed as (op(b)ᵀ·op(a)ᵀ)ᵀ (see swapOperands)
  { a: [4, 16], b: [16, 24] },
  { a: [2, 3, 20], b: [2, 20, 30] },
  { a: [3, 5, 20], b: [1, 20, 30] },
])('BatchMatMul a $a b $b matches cpu with every transpose combination', async (c) => {
  for (const [transposeA, transposeB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    const swap = (s: number[]) => [...s.slice(0, -2), s.at(-1)!, s.at(-2)!]
    const a = { values: seeded(sizeOf(c.a), 10), shape: transposeA ? swap(c.a) : c.a }
    const b = { values: seeded(sizeOf(c.b), 11), shape: transposeB ? swap(c.b) : c.b }
    const expected = await runOn('cpu', tf.BatchMatMul, { a, b }, { transposeA, transposeB })
    const got = await runOn('wasm', tf.BatchMatMul, { a, b }, { transposeA, transposeB })
    expect(got.shape).toEqual(expected.shape)
    expect(relativeError(got.values, expected.values), `transposeA ${transposeA} transposeB ${transposeB}`).toBeLessThanOrEqual(TOLERANCE)
  }
})

test('Conv2DBackpropFilter and Conv2DBackpropInput in NCHW match cpu', async () => {
  const x = seeded(2 * 3 * 6 * 5, 12)
  const dy = seeded(2 * 4 * 6 * 5, 13)
  const filter = seeded(3 * 3 * 3 * 4, 14)
  const common = { strides: 1, pad: 'same', dataFormat: 'NCHW' }
  for (const [kernel, inputs, attrs] of [
    [tf.Conv2DBackpropFilter, { x: { values: x, shape: [2, 3, 6, 5] }, dy: { values: dy, shape: [2, 4, 6, 5] } }, { ...common, filterShape: [3, 3, 3, 4] }],
    [tf.Conv2DBackpropInput, { dy: { values: dy, shape: [2, 4, 6, 5] }, filter: { values: filter, shape: [3, 3, 3, 4] } }, { ...common, inputShape: [2, 3, 6, 5] }],
  ] as const) {
    const expected = await runOn('cpu', kernel, inputs, attrs)
    const got = await runOn('wasm', kernel, inputs, attrs)
    expect(got.shape, kernel).toEqual(expected.shape)
    expect(relativeError(got.values, expected.values), kernel).toBeLessThanOrEqual(TOLERANCE)
  }
})

test('BatchMatMul computes the MLP\'s dx = dy·Wᵀ transposed, and dW = xᵀ·dy and plain products as they are', () => {
  expect(swapOperands([64, 256], [512, 256], false, true)).toBe(true) // dy·Wᵀ: transposes dy and the result, not W
  expect(swapOperands([64, 784], [64, 512], true, false)).toBe(false) // xᵀ·dy: the result is the big [784,512]
  expect(swapOperands([64, 784], [784, 512], false, false)).toBe(false)
})

test('Identity on wasm shares the input\'s memory instead of copying it, and each reference lives on its own', async () => {
  await tf.setBackend('wasm')
  const x = tf.tensor([1, 2, 3, 4], [2, 2])
  const before = tf.memory().numBytes
  const clone = tf.clone(x) // what the engine does to every tensor it saves for the backward pass
  expect(tf.memory().numBytes - before).toBe(16) // tfjs counts the new tensor's bytes...
  const heap = tf.backend() as unknown as { dataIdMap: { get(id: object): { memoryOffset: number } } }
  expect(heap.dataIdMap.get(clone.dataId).memoryOffset).toBe(heap.dataIdMap.get(x.dataId).memoryOffset) // ...but the heap holds them once
  x.dispose()
  expect(Array.from(clone.dataSync())).toEqual([1, 2, 3, 4])
  clone.dispose()
})

describe('Adam through RingtrainAdamUpdate', () => {
  // Lengths around the SIMD width (4) and past it, so the vector loop and the scalar tail both run.
  const shapes = [[1], [3], [4], [5], [17], [10, 100], [4099]]

  /**
   * Four Adam steps on `backendName` from seeded weights and gradients, with the fused update
   * installed on the optimizer (`useFusedAdam`) or not; every weight and slot after them, and
   * how often the fused kernel ran.
   */
  async function adamSteps(backendName: 'cpu' | 'wasm', options: { gradientsAsMap?: boolean; fused?: boolean } = {}): Promise<{ values: Float32Array[]; fusedRuns: number }> {
    await tf.setBackend(backendName)
    const kernel = tf.getKernel(ADAM_UPDATE, backendName)
    const runs = kernel ? vi.spyOn(kernel, 'kernelFunc') : undefined
    const variables = shapes.map((shape, k) => tf.variable(tf.tensor(seeded(sizeOf(shape), 20 + k), shape)))
    const optimizer = tf.train.adam(0.01, 0.9, 0.999, 1e-7)
    const removeFusedAdam = options.fused ? useFusedAdam(optimizer) : () => {}
    for (let step = 0; step < 4; step++) {
      const gradients = shapes.map((shape, k) => tf.tensor(seeded(sizeOf(shape), 100 * step + k).map((g) => g * 10 ** (k - 3)), shape))
      if (options.gradientsAsMap) optimizer.applyGradients(Object.fromEntries(variables.map((v, k) => [v.name, gradients[k]!])) as never) // a NamedTensorMap, as measure-step.ts passes
      else optimizer.applyGradients(variables.map((v, k) => ({ name: v.name, tensor: gradients[k]! })))
      tf.dispose(gradients)
    }
    removeFusedAdam()
    const slots = (await optimizer.getWeights()).map((w) => w.tensor)
    const values = [...variables, ...slots].map((t) => Float32Array.from(t.dataSync() as Float32Array))
    tf.dispose([...variables, ...slots])
    optimizer.dispose()
    const fusedRuns = runs?.mock.calls.length ?? 0
    runs?.mockRestore()
    return { values, fusedRuns }
  }

  test.each([false, true])('useFusedAdam on wasm equals stock tfjs Adam on cpu bit for bit (gradients as a map: %s)', async (gradientsAsMap) => {
    expect(tf.getKernel(ADAM_UPDATE, 'wasm')).toBeDefined()
    const expected = await adamSteps('cpu', { gradientsAsMap })
    const got = await adamSteps('wasm', { gradientsAsMap, fused: true })
    expect(got.fusedRuns).toBe(4 * shapes.length) // the fused kernel did the work: one run per variable and step
    expect(got.values).toEqual(expected.values)
  })

  test('only the optimizer it is installed on takes the fused path, and only until it is removed', async () => {
    expect((await adamSteps('wasm')).fusedRuns).toBe(0) // the pack alone changes no optimizer
    await tf.setBackend('wasm')
    const optimizer = tf.train.adam(0.01)
    const other = tf.train.adam(0.01)
    const remove = useFusedAdam(optimizer)
    expect(Object.hasOwn(optimizer, 'applyGradients')).toBe(true) // on this object only
    expect(Object.hasOwn(other, 'applyGradients')).toBe(false)
    remove()
    expect(Object.hasOwn(optimizer, 'applyGradients')).toBe(false)
    optimizer.dispose()
    other.dispose()
  })

  test('the scalar JS path (no WebAssembly heap) equals stock tfjs Adam bit for bit', async () => {
    const expected = await adamSteps('cpu')
    tf.registerKernel(adamUpdateConfig('cpu'))
    try {
      const got = await adamSteps('cpu', { fused: true })
      expect(got.fusedRuns).toBe(4 * shapes.length)
      expect(got.values).toEqual(expected.values)
    } finally {
      tf.unregisterKernel(ADAM_UPDATE, 'cpu')
    }
  })
})
