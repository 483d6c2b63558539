/**
 * MaxPoolGrad for wasm. tfjs-backend-wasm 4.22's own starts each window's running max at
 * the smallest positive float, so a window whose values are all ≤ 0 (common after a conv
 * with no ReLU, or with negative inputs) gets no gradient at all. This one routes each
 * window's dy to its first maximum in row-major order, as tfjs-backend-cpu does, so ties
 * resolve the same way on both backends.
 */
import * as tf from '@tensorflow/tfjs'
import type { KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs'
import { allocate, values, type PackBackendName } from './backend-access.js'

export function maxPoolGradConfig(backendName: PackBackendName): KernelConfig {
  return {
    kernelName: tf.MaxPoolGrad,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => maxPoolGrad(backend as KernelBackend, inputs['dy']!, inputs['input']!, attrs as unknown as tf.MaxPoolGradAttrs),
  }
}

function maxPoolGrad(backend: KernelBackend, dy: TensorInfo, input: TensorInfo, attrs: tf.MaxPoolGradAttrs): TensorInfo {
  const g = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number], attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode)
  const dx = allocate(backend, input.shape)
  const x = values(backend, input)
  const dyValues = values(backend, dy)
  const dxValues = values(backend, dx) as Float32Array
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = g
  const best = new Float32Array(C)
  const bestAt = new Int32Array(C)
  let dyIndex = 0
  for (let n = 0; n < g.batchSize; n++) {
    for (let oh = 0; oh < OH; oh++) {
      const top = oh * g.strideHeight - g.padInfo.top
      for (let ow = 0; ow < OW; ow++, dyIndex += C) {
        const left = ow * g.strideWidth - g.padInfo.left
        best.fill(-Infinity)
        bestAt.fill(-1)
        for (let kh = 0; kh < g.effectiveFilterHeight; kh += g.dilationHeight) {
          const ih = top + kh
          if (ih < 0 || ih >= H) continue
          for (let kw = 0; kw < g.effectiveFilterWidth; kw += g.dilationWidth) {
            const iw = left + kw
            if (iw < 0 || iw >= W) continue
            const base = ((n * H + ih) * W + iw) * C
            for (let c = 0; c < C; c++) {
              const v = x[base + c]!
              // Strict '>': the first maximum wins, as in tfjs-backend-cpu's maxPoolPositions.
              if (v > best[c]! || bestAt[c] === -1) {
                best[c] = v
                bestAt[c] = base + c
              }
            }
          }
        }
        for (let c = 0; c < C; c++) if (bestAt[c]! >= 0) dxValues[bestAt[c]!]! += dyValues[dyIndex + c]!
      }
    }
  }
  return dx
}
