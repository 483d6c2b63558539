/**
 * DepthwiseConv2dNativeBackpropInput, which tfjs-backend-wasm 4.22 lacks (depthwise and
 * separable convolutions cannot train on wasm without it). Direct loops: each input channel
 * c meets only output channels c·M … c·M+M-1 (M = channel multiplier), and the filter
 * [KH,KW,Ci,M] flattened per tap has the same c·M+m order as dy's channels, so one index
 * walks both. Supports strides, dilations, same/valid/explicit padding; NHWC only, as tfjs.
 */
import * as tf from '@tensorflow/tfjs'
import type { KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs'
import { allocate, pair, values, type PackBackendName } from './backend-access.js'

export function depthwiseConv2dBackpropInputConfig(backendName: PackBackendName): KernelConfig {
  return {
    kernelName: tf.DepthwiseConv2dNativeBackpropInput,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) =>
      depthwiseBackpropInput(backend as KernelBackend, inputs['dy']!, inputs['filter']!, attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs),
  }
}

function depthwiseBackpropInput(
  backend: KernelBackend, dy: TensorInfo, filter: TensorInfo, attrs: tf.DepthwiseConv2dNativeBackpropInputAttrs,
): TensorInfo {
  const filterShape = filter.shape as [number, number, number, number]
  const g = tf.backend_util.computeConv2DInfo(
    attrs.inputShape, filterShape, attrs.strides, pair(attrs.dilations), attrs.pad, attrs.dimRoundingMode, true)
  const dx = allocate(backend, attrs.inputShape)
  const dyValues = values(backend, dy)
  const f = values(backend, filter)
  const dxValues = values(backend, dx) as Float32Array
  const { inHeight: H, inWidth: W, inChannels: C, outChannels: CO, outHeight: OH, outWidth: OW } = g
  const M = CO / C
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
            const dxBase = ((n * H + ih) * W + iw) * C
            const fBase = (kh * g.filterWidth + kw) * CO
            if (M === 1) {
              for (let c = 0; c < C; c++) dxValues[dxBase + c]! += dyValues[dyBase + c]! * f[fBase + c]!
              continue
            }
            for (let c = 0, o = 0; c < C; c++) {
              let sum = 0
              for (let m = 0; m < M; m++, o++) sum += dyValues[dyBase + o]! * f[fBase + o]!
              dxValues[dxBase + c]! += sum
            }
          }
        }
      }
    }
  }
  return dx
}
