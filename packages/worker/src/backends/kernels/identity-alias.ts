/**
 * Identity as an alias on wasm: the output shares the input's memory (one more reference)
 * instead of a copy, as tfjs-backend-cpu's Identity already does. tfjs's engine clones
 * (Identity) every tensor it saves for the backward pass, so stock wasm copied each layer's
 * weights and inputs once per training step: 1.3 gradients' worth of memcpy per step for the
 * bench MLP (bench/gradient-copies.ts). Sharing is safe because no kernel writes into its
 * inputs (tfjs's contract, which the pack's kernels keep too) and a variable's new value is a
 * new tensor, never a write into the old one.
 */
import * as tf from '@tensorflow/tfjs'
import type { KernelConfig, TensorInfo } from '@tensorflow/tfjs'

interface RefCounted {
  incRef(dataId: object): void
}

export function identityAliasConfig(): KernelConfig {
  return {
    kernelName: tf.Identity,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const x = inputs['x']!
      ;(backend as unknown as RefCounted).incRef(x.dataId)
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype } satisfies TensorInfo
    },
  }
}
