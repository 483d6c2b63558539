/**
 * Routes one `tf.AdamOptimizer`'s `applyGradients` through the pack's `RingtrainAdamUpdate`
 * kernel (one pass per variable instead of 13 elementwise kernels). The slots, their names,
 * `getWeights`/`setWeights` and the results are tfjs's own: this is
 * AdamOptimizer.applyGradients (tfjs-core 4.22) with the per-variable arithmetic in one
 * kernel, bit for bit the same numbers.
 *
 * Nothing global changes: `useFusedAdam(optimizer)` puts the fused method on that one
 * optimizer object (an own property in front of the prototype's), and the function it
 * returns takes it away again. The worker's Replica installs it on its optimizer when it
 * is built and removes it in `dispose()`; `bench compute` does the same, so it times what
 * workers run. Subclasses of AdamOptimizer, and backends where the pack did not register
 * the kernel, keep the stock method.
 */
import * as tf from '@tensorflow/tfjs'
import { ADAM_UPDATE, type AdamUpdateAttrs } from './kernels/adam-update.js'

type VariableGradients = tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[]

/** AdamOptimizer's private fields, as tfjs-core 4.22 names them. */
interface AdamInternals {
  learningRate: number
  beta1: number
  beta2: number
  epsilon: number
  accBeta1: tf.Variable
  accBeta2: tf.Variable
  accumulatedFirstMoment: { originalName: string; variable: tf.Variable }[]
  accumulatedSecondMoment: { originalName: string; variable: tf.Variable }[]
  incrementIterations(): void
}

// eslint-disable-next-line @typescript-eslint/unbound-method -- always called as stockApplyGradients.call(this, …)
const stockApplyGradients = (tf.AdamOptimizer.prototype as unknown as { applyGradients(this: tf.Optimizer, gradients: VariableGradients): void }).applyGradients

/**
 * Installs the fused update on `optimizer` when it is a plain `tf.AdamOptimizer` and the
 * active backend has the `RingtrainAdamUpdate` kernel (wasm with the pack). Returns the
 * function that removes it; it does nothing where nothing was installed.
 */
export function useFusedAdam(optimizer: tf.Optimizer): () => void {
  if (Object.getPrototypeOf(optimizer) !== tf.AdamOptimizer.prototype || !tf.getKernel(ADAM_UPDATE, tf.getBackend())) return () => {}
  function applyGradients(this: tf.Optimizer, gradients: VariableGradients): void {
    // The kernel belongs to one backend: elsewhere (a test that switched) take the stock path.
    if (!tf.getKernel(ADAM_UPDATE, tf.getBackend())) return stockApplyGradients.call(this, gradients)
    fusedApplyGradients(this as unknown as AdamInternals, gradients)
  }
  Object.defineProperty(optimizer, 'applyGradients', { value: applyGradients, configurable: true, writable: true })
  return () => {
    if (Object.getOwnPropertyDescriptor(optimizer, 'applyGradients')?.value === applyGradients) delete (optimizer as { applyGradients?: unknown }).applyGradients
  }
}

function fusedApplyGradients(adam: AdamInternals, gradients: VariableGradients): void {
  const names = Array.isArray(gradients) ? gradients.map((g) => g.name) : Object.keys(gradients)
  const attrs: AdamUpdateAttrs = { beta1: adam.beta1, beta2: adam.beta2, epsilon: adam.epsilon, learningRate: adam.learningRate }
  tf.tidy(() => {
    names.forEach((name, i) => {
      const value = tf.engine().registeredVariables[name]!
      // Slots made as tfjs makes them, so getWeights/setWeights and saved state are unchanged.
      adam.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) }
      adam.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) }
      const gradient = Array.isArray(gradients) ? gradients[i]!.tensor : gradients[name]
      if (gradient == null) return
      const firstMoment = adam.accumulatedFirstMoment[i]!.variable
      const secondMoment = adam.accumulatedSecondMoment[i]!.variable
      const inputs = { value, firstMoment, secondMoment, gradient, accBeta1: adam.accBeta1, accBeta2: adam.accBeta2 }
      const [newValue, newFirstMoment, newSecondMoment] = tf.engine().runKernel(ADAM_UPDATE, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[]
      firstMoment.assign(newFirstMoment!)
      secondMoment.assign(newSecondMoment!)
      value.assign(newValue!)
    })
    adam.accBeta1.assign(tf.mul(adam.accBeta1, adam.beta1))
    adam.accBeta2.assign(tf.mul(adam.accBeta2, adam.beta2))
  })
  adam.incrementIterations()
}
