/**
 * The training-kernel pack: kernels that let tfjs-backend-wasm 4.22 train convolutional,
 * depthwise/separable and embedding models (tfjs issues 8474, 8082), fix its MaxPoolGrad,
 * keep its matrix products on XNNPACK's fast path, make Identity an alias rather than a copy
 * (identity-alias.ts), run Adam's update as one SIMD pass (the
 * `RingtrainAdamUpdate` kernel, which an optimizer uses once `useFusedAdam` is installed on
 * it), and replace tfjs-backend-cpu's slow convolution gradients.
 * Registered once per worker process, after `selectBackend` and
 * before the model is built. Kernel registrations are global to the process.
 */
import * as tf from '@tensorflow/tfjs'
import type { KernelConfig } from '@tensorflow/tfjs'
import { DistError } from '@ringtrain/core'
import type { PackBackendName } from './kernels/backend-access.js'
import { adamUpdateConfig } from './kernels/adam-update.js'
import { batchMatMulConfig } from './kernels/batch-mat-mul.js'
import { conv2dBackpropFilterConfig } from './kernels/conv2d-backprop-filter.js'
import { conv2dBackpropInputConfig } from './kernels/conv2d-backprop-input.js'
import { depthwiseConv2dBackpropFilterConfig } from './kernels/depthwise-conv2d-backprop-filter.js'
import { depthwiseConv2dBackpropInputConfig } from './kernels/depthwise-conv2d-backprop-input.js'
import { identityAliasConfig } from './kernels/identity-alias.js'
import { maxPoolGradConfig } from './kernels/max-pool-grad.js'
import { unsortedSegmentSumConfig } from './kernels/unsorted-segment-sum.js'

export interface TrainingKernelPack {
  backendName: PackBackendName
  /** Kernel names the pack registered, in order. */
  kernelNames: string[]
  /** Restores the backend's own kernels (or none, where it had none). For tests and benchmarks. */
  unregister(): void
}

function packFor(backendName: PackBackendName, stock: (name: string) => KernelConfig | undefined): KernelConfig[] {
  const shared = [
    conv2dBackpropFilterConfig(backendName),
    conv2dBackpropInputConfig(backendName),
    depthwiseConv2dBackpropFilterConfig(backendName),
    depthwiseConv2dBackpropInputConfig(backendName),
  ]
  if (backendName === 'cpu') return shared // cpu's MaxPoolGrad, UnsortedSegmentSum and BatchMatMul are correct and no slower
  const stockMatMul = stock(tf.BatchMatMul)
  if (!stockMatMul) throw new DistError('E_BACKEND', 'the wasm backend has no BatchMatMul kernel to build the training-kernel pack on; is tfjs-backend-wasm 4.22 loaded?')
  return [...shared, unsortedSegmentSumConfig('wasm'), maxPoolGradConfig('wasm'), batchMatMulConfig(stockMatMul), adamUpdateConfig('wasm'), identityAliasConfig()]
}

const installed = new Map<PackBackendName, TrainingKernelPack>()

/**
 * Registers the pack for `backendName` (default: the active backend), replacing the
 * backend's own kernels of the same names. Idempotent per backend. Rejects with `E_BACKEND`
 * for backends the pack does not cover ('tensorflow', 'webgpu' need none).
 */
export function registerTrainingKernels(backendName: string = tf.getBackend()): TrainingKernelPack {
  if (backendName !== 'wasm' && backendName !== 'cpu') {
    throw new DistError('E_BACKEND', `the training-kernel pack covers the wasm and cpu backends; got '${backendName}'.`, { got: backendName })
  }
  const existing = installed.get(backendName)
  if (existing) return existing
  const stockConfigs = new Map<string, KernelConfig>()
  const configs = packFor(backendName, (name) => tf.getKernel(name, backendName))
  for (const config of configs) {
    const stock = tf.getKernel(config.kernelName, backendName)
    if (stock) {
      stockConfigs.set(config.kernelName, stock)
      tf.unregisterKernel(config.kernelName, backendName) // registering over a kernel only warns and keeps it ambiguous
    }
    tf.registerKernel(config)
  }
  const pack: TrainingKernelPack = {
    backendName,
    kernelNames: configs.map((c) => c.kernelName),
    unregister: () => {
      for (const config of configs) {
        tf.unregisterKernel(config.kernelName, backendName)
        const stock = stockConfigs.get(config.kernelName)
        if (stock) tf.registerKernel(stock)
      }
      installed.delete(backendName)
    },
  }
  installed.set(backendName, pack)
  return pack
}
