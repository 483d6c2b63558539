/**
 * Conv2DBackpropInput (the input gradient of conv2d, and conv2dTranspose's forward pass).
 * wasm has one, but it takes 120 ms for dy [64,11,11,64] · filter [3,3,32,64] where this
 * takes ≈ 20 ms (measured on this machine); cpu's is nested loops. One product, then
 * the adjoint of im2col:
 *   cols[P, K] = dy[P, Co] · filterᵀ[Co, K];  dx = col2im(cols)
 * Accepts an optional `dilations` attribute (tfjs's gradient never passes one).
 */
import * as tf from '@tensorflow/tfjs'
import type { KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs'
import { allocate, callKernel, pair, release, reshaped, values, type PackBackendName } from './backend-access.js'
import { col2im } from './im2col.js'
import { toChannelsFirst, withChannelsLast } from './channels-last.js'

type Attrs = tf.Conv2DBackpropInputAttrs & { dilations?: number | [number, number] }

export function conv2dBackpropInputConfig(backendName: PackBackendName): KernelConfig {
  return {
    kernelName: tf.Conv2DBackpropInput,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const a = attrs as unknown as Attrs
      const b = backend as KernelBackend
      if (a.dataFormat !== 'NCHW') return conv2dBackpropInput(backendName, b, inputs['dy']!, inputs['filter']!, a, a.inputShape)
      const [n, c, h, w] = a.inputShape
      const nhwcShape: [number, number, number, number] = [n, h, w, c]
      const dx = withChannelsLast(backendName, b, a.dataFormat, [inputs['dy']!],
        ([dy]) => conv2dBackpropInput(backendName, b, dy!, inputs['filter']!, a, nhwcShape))
      return toChannelsFirst(backendName, b, dx)
    },
  }
}

function conv2dBackpropInput(
  backendName: PackBackendName, backend: KernelBackend, dy: TensorInfo, filter: TensorInfo,
  attrs: Attrs, inputShape: [number, number, number, number],
): TensorInfo {
  const filterShape = filter.shape as [number, number, number, number]
  const g = tf.backend_util.computeConv2DInfo(
    inputShape, filterShape, attrs.strides, pair(attrs.dilations), attrs.pad, attrs.dimRoundingMode)
  const taps = g.filterHeight * g.filterWidth * g.inChannels
  const positions = g.batchSize * g.outHeight * g.outWidth
  // filterᵀ explicitly: wasm's product with transposeB leaves XNNPACK's fast path.
  const filter2d = reshaped(backendName, backend, filter, [taps, g.outChannels])
  const filterT = callKernel(backendName, backend, 'Transpose', { x: filter2d }, { perm: [1, 0] })
  const dy2d = reshaped(backendName, backend, dy, [positions, g.outChannels])
  const cols = callKernel(backendName, backend, 'BatchMatMul', { a: dy2d, b: filterT }, { transposeA: false, transposeB: false })
  release(backend, filter2d, filterT, dy2d)
  const dx = allocate(backend, inputShape)
  // See Note [Heap views go stale]: both views are taken after the last allocation.
  col2im(values(backend, cols), g, values(backend, dx) as Float32Array)
  release(backend, cols)
  return dx
}
