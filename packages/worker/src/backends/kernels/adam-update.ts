/**
 * `RingtrainAdamUpdate`: one Adam step for one variable as a single kernel. Inputs `value`,
 * `firstMoment`, `secondMoment`, `gradient` (same shape) and the scalars `accBeta1`,
 * `accBeta2` (β1ᵗ, β2ᵗ); attrs `beta1`, `beta2`, `epsilon`, `learningRate`. Outputs the new
 * value, first moment and second moment as fresh tensors (inputs are never written: XNNPACK
 * caches packed weights by tensor id, so a weight changed in place would go stale there).
 *
 * The arithmetic is AdamOptimizer.applyGradients's (tfjs-core 4.22), operation by operation
 * in float32, so the result is bit-identical to tfjs's optimizer. See fused-adam.ts for
 * how the optimizer reaches it.
 */
import type { KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs'
import { allocateUninitialized, values, wasmMemory, type PackBackendName } from './backend-access.js'
import { adamUpdateSimdFor } from './adam-update-simd.js'

export const ADAM_UPDATE = 'RingtrainAdamUpdate'

export interface AdamUpdateAttrs {
  beta1: number
  beta2: number
  epsilon: number
  learningRate: number
}

export function adamUpdateConfig(backendName: PackBackendName): KernelConfig {
  return {
    kernelName: ADAM_UPDATE,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => {
      const b = backend as KernelBackend
      const { beta1, beta2, epsilon, learningRate } = attrs as unknown as AdamUpdateAttrs
      const value = inputs['value']!
      const outputs: TensorInfo[] = [0, 1, 2].map(() => allocateUninitialized(b, value.shape))
      // Constants as tfjs makes them: JS arithmetic in float64, then a float32 scalar tensor.
      const f = Math.fround
      const accBeta1 = values(b, inputs['accBeta1']!)[0]!
      const accBeta2 = values(b, inputs['accBeta2']!)[0]!
      const constants: Constants = [f(beta1), f(1 - beta1), f(beta2), f(1 - beta2), f(1 - accBeta1), f(1 - accBeta2), f(epsilon), f(-learningRate)]
      const views = [value, inputs['firstMoment']!, inputs['secondMoment']!, inputs['gradient']!, ...outputs].map((info) => values(b, info) as Float32Array)
      const memory = wasmMemory(b)
      const simd = memory && adamUpdateSimdFor(memory)
      if (simd) simd(...(views.map((view) => view.byteOffset) as [number, number, number, number, number, number, number]), views[0]!.length, ...constants)
      else adamUpdateScalar(views as Seven<Float32Array>, constants)
      return outputs
    },
  }
}

type Seven<T> = [T, T, T, T, T, T, T]
/** β1, 1−β1, β2, 1−β2, 1−β1ᵗ, 1−β2ᵗ, ε, −lr, each rounded to float32. */
type Constants = readonly [number, number, number, number, number, number, number, number]

/** The same update in JS, one element at a time, each operation rounded to float32. */
function adamUpdateScalar([w, m, v, g, outW, outM, outV]: Seven<Float32Array>, constants: Constants): void {
  const f = Math.fround
  const [b1, c1, b2, c2, omab1, omab2, eps, nlr] = constants
  for (let i = 0; i < w.length; i++) {
    const gi = g[i]!
    const mi = f(f(m[i]! * b1) + f(gi * c1))
    const vi = f(f(v[i]! * b2) + f(f(gi * gi) * c2))
    outM[i] = mi
    outV[i] = vi
    const step = f(f(mi / omab1) / f(f(Math.sqrt(f(vi / omab2))) + eps))
    outW[i] = f(step * nlr) + w[i]!
  }
}
