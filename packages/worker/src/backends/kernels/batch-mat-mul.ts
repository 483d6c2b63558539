/**
 * BatchMatMul for wasm that always takes XNNPACK's fast path. tfjs-backend-wasm 4.22 runs a
 * product on XNNPACK only without transposes, and backprop always transposes (dW = xᵀ·dy,
 * dx = dy·Wᵀ): [7744×288]ᵀ·[7744×64] takes 144 ms with transposeA and 11 ms as an explicit
 * transpose then a plain product (measured on this machine); the MLP 784-512-256-10 step
 * goes from ≈ 45–50 ms to ≈ 15 ms.
 */
import * as tf from '@tensorflow/tfjs'
import type { KernelBackend, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs'
import { callKernel, release } from './backend-access.js'

/** Wraps the stock wasm kernel `stock` (captured before the pack replaces it). */
export function batchMatMulConfig(stock: KernelConfig): KernelConfig {
  const config: KernelConfig = {
    kernelName: tf.BatchMatMul,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs
      const b = backend as KernelBackend
      let a = inputs['a']!
      let bInput = inputs['b']!
      const copies: TensorInfo[] = []
      if (transposeA) copies.push((a = swapLastTwo(b, a)))
      if (transposeB) copies.push((bInput = swapLastTwo(b, bInput)))
      const out = (stock.kernelFunc as KernelFunc)({ inputs: { a, b: bInput }, backend, attrs: { transposeA: false, transposeB: false } })
      release(b, ...copies)
      return out
    },
  }
  if (stock.setupFunc) config.setupFunc = stock.setupFunc
  return config
}

function swapLastTwo(backend: KernelBackend, info: TensorInfo): TensorInfo {
  const rank = info.shape.length
  const perm = [...Array(rank).keys()]
  perm[rank - 2] = rank - 1
  perm[rank - 1] = rank - 2
  return callKernel('wasm', backend, 'Transpose', { x: info }, { perm })
}
