/**
 * DepthwiseConv2dNativeBackpropFilter, which tfjs-backend-wasm 4.22 lacks. Direct loops over
 * output positions and taps; dW[kh,kw,c,m] sums x[·,c]·dy[·,c·M+m] over all N·OH·OW
 * positions, so it accumulates in float64 (10 816 terms for a 64×13×13 map) and rounds once.
 * Unlike tfjs-backend-cpu's, it honours `dilations`.
 */
import * as tf from '@tensorflow/tfjs'
import type { KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs'
import { allocate, pair, values, type PackBackendName } from './backend-access.js'

export function depthwiseConv2dBackpropFilterConfig(backendName: PackBackendName): KernelConfig {
  return {
    kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) =>
      depthwiseBackpropFilter(backend as KernelBackend, inputs['x']!, inputs['dy']!, attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs),
  }
}

function depthwiseBackpropFilter(
  backend: KernelBackend, x: TensorInfo, dy: TensorInfo, attrs: tf.DepthwiseConv2dNativeBackpropFilterAttrs,
): TensorInfo {
  const g = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, pair(attrs.dilations),
    attrs.pad, attrs.dimRoundingMode, true)
  const { inHeight: H, inWidth: W, inChannels: C, outChannels: CO, outHeight: OH, outWidth: OW } = g
  const M = CO / C
  const sums = new Float64Array(g.filterHeight * g.filterWidth * CO)
  const xValues = values(backend, x)
  const dyValues = values(backend, dy)
  let dyBase = 0
  for (let n = 0; n < g.batchSize; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++, dyBase += CO) {
        for (let kh = 0; kh < g.filterHeight; kh++) {
          const ih = oh * g.strideHeight - g.padInfo.top + kh * g.dilationHeight
          if (ih < 0 || ih >= H) continue
          for (let kw = 0; kw < g.filterWidth; kw++) {
            const iw = ow * g.strideWidth - g.padInfo.left + kw * g.dilationWidth
            if (iw < 0 || iw >= W) continue
            const xBase = ((n * H + ih) * W + iw) * C
            const fBase = (kh * g.filterWidth + kw) * CO
            if (M === 1) {
              for (let c = 0; c < C; c++) sums[fBase + c]! += xValues[xBase + c]! * dyValues[dyBase + c]!
              continue
            }
            for (let c = 0, o = 0; c < C; c++) {
              const xc = xValues[xBase + c]!
              for (let m = 0; m < M; m++, o++) sums[fBase + o]! += xc * dyValues[dyBase + o]!
            }
          }
        }
      }
    }
  }
  const dW = allocate(backend, attrs.filterShape)
  ;(values(backend, dW) as Float32Array).set(sums)
  return dW
}
