/**
 * BatchMatMul for wasm that always takes XNNPACK's fast path. tfjs-backend-wasm 4.22 runs a
 * product on XNNPACK only without transposes, and backprop always transposes (dW = xᵀ·dy,
 * dx = dy·Wᵀ): [7744×288]ᵀ·[7744×64] takes 144 ms with transposeA and 11 ms as an explicit
 * transpose then a plain product (measured on this machine); the MLP 784-512-256-10 step
 * goes from ≈ 45–50 ms to ≈ 15 ms. Where it moves fewer elements, the product is computed
 * transposed instead (see swapOperands): dy·Wᵀ for W [512,256] 1.6 → 0.9 ms.
 */
import * as tf from '@tensorflow/tfjs'
import type { KernelBackend, KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs'
import { callKernel, release } from './backend-access.js'

/** Wraps the stock wasm kernel `stock` (captured before the pack replaces it). */
export function batchMatMulConfig(stock: KernelConfig): KernelConfig {
  const plain = (backend: KernelBackend, a: TensorInfo, b: TensorInfo): TensorInfo =>
    (stock.kernelFunc as KernelFunc)({ inputs: { a, b }, backend, attrs: { transposeA: false, transposeB: false } }) as TensorInfo
  const config: KernelConfig = {
    kernelName: tf.BatchMatMul,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs
      const b = backend as KernelBackend
      const [a, bInput] = [inputs['a']!, inputs['b']!]
      const copies: TensorInfo[] = []
      const transposed = (info: TensorInfo) => {
        const copy = swapLastTwo(b, info)
        copies.push(copy)
        return copy
      }
      try {
        if (swapOperands(a.shape, bInput.shape, transposeA, transposeB)) {
          // C = op(a)·op(b) as (op(b)ᵀ·op(a)ᵀ)ᵀ: a transposed operand is then used as stored.
          const product = plain(b, transposeB ? bInput : transposed(bInput), transposeA ? a : transposed(a))
          copies.push(product)
          return swapLastTwo(b, product)
        }
        return plain(b, transposeA ? transposed(a) : a, transposeB ? transposed(bInput) : bInput)
      } finally {
        release(b, ...copies)
      }
    },
  }
  if (stock.setupFunc) config.setupFunc = stock.setupFunc
  return config
}

/**
 * Whether computing Cᵀ = op(b)ᵀ·op(a)ᵀ and transposing it moves fewer elements than C =
 * op(a)·op(b) with its explicit transposes. Counted per batch: the transposed copies, the
 * result's transpose, and XNNPACK's packing of the right-hand operand (K×N), which it redoes
 * on every call. For dx = dy·Wᵀ (dy [64,256], W [512,256]) the swap transposes dy and the
 * [512,64] result instead of W, and packs dyᵀ instead of W.
 */
export function swapOperands(aShape: number[], bShape: number[], transposeA: boolean, transposeB: boolean): boolean {
  if (!transposeA && !transposeB) return false
  const rank = aShape.length
  const [m, k] = transposeA ? [aShape[rank - 1]!, aShape[rank - 2]!] : [aShape[rank - 2]!, aShape[rank - 1]!]
  const n = transposeB ? bShape[rank - 2]! : bShape[rank - 1]!
  const direct = (transposeA ? m * k : 0) + (transposeB ? k * n : 0) + k * n
  const swapped = (transposeB ? 0 : k * n) + (transposeA ? 0 : m * k) + m * n + k * m
  return swapped < direct
}

function swapLastTwo(backend: KernelBackend, info: TensorInfo): TensorInfo {
  const rank = info.shape.length
  const perm = [...Array(rank).keys()]
  perm[rank - 2] = rank - 1
  perm[rank - 1] = rank - 2
  return callKernel('wasm', backend, 'Transpose', { x: info }, { perm })
}
