/**
 * Conv2DBackpropFilter (the filter gradient of conv2d, conv1d and conv2dTranspose), which
 * tfjs-backend-wasm 4.22 lacks (tfjs issues 8474, 8082) and tfjs-backend-cpu runs as nested
 * loops (≈ 10× slower than this on the benchmark CNN). One patch matrix and one product:
 *   dW[K, Co] = colsT[K, P] · dy[P, Co]
 * Accepts an optional `dilations` attribute (tfjs's gradient never passes one).
 */
import * as tf from '@tensorflow/tfjs'
import type { KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs'
import { allocate, callKernel, pair, release, reshaped, values, type PackBackendName } from './backend-access.js'
import { im2colTransposed } from './im2col.js'
import { withChannelsLast } from './channels-last.js'

export function conv2dBackpropFilterConfig(backendName: PackBackendName): KernelConfig {
  return {
    kernelName: tf.Conv2DBackpropFilter,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs & { dilations?: number | [number, number] }
      const b = backend as KernelBackend
      return withChannelsLast(backendName, b, a.dataFormat, [inputs['x']!, inputs['dy']!],
        ([x, dy]) => conv2dBackpropFilter(backendName, b, x!, dy!, a))
    },
  }
}

function conv2dBackpropFilter(
  backendName: PackBackendName, backend: KernelBackend, x: TensorInfo, dy: TensorInfo,
  attrs: tf.Conv2DBackpropFilterAttrs & { dilations?: number | [number, number] },
): TensorInfo {
  const filterShape = attrs.filterShape
  const g = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape, attrs.strides, pair(attrs.dilations),
    attrs.pad, attrs.dimRoundingMode)
  const taps = g.filterHeight * g.filterWidth * g.inChannels
  const positions = g.batchSize * g.outHeight * g.outWidth
  const colsT = allocate(backend, [taps, positions])
  im2colTransposed(values(backend, x), g, values(backend, colsT) as Float32Array)
  const dy2d = reshaped(backendName, backend, dy, [positions, g.outChannels])
  const product = callKernel(backendName, backend, 'BatchMatMul', { a: colsT, b: dy2d }, { transposeA: false, transposeB: false })
  release(backend, colsT, dy2d)
  const dW = reshaped(backendName, backend, product, filterShape)
  release(backend, product)
  return dW
}
