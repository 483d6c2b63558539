/**
 * The only place a `tf.Tensor` meets a `Float32Array` (see docs/design.md): gradients and
 * weights go from tensors into one flat buffer in layout order, and back.
 *
 * Note [Copy into tensors]
 * Going in, each tensor's values are copied once, from where the backend keeps them (a view
 * of the wasm heap, the cpu backend's own array) straight into the flat buffer; only other
 * backends are read with `dataSync()`, which may copy once more. Coming out, a tensor made
 * from a view of the caller's buffer must never keep that view: the cpu backend (and
 * webgpu and tensorflow until they upload) store the typed array a tensor is made from,
 * and `Variable.assign` adopts the tensor's data, so reusing the buffer for the next step
 * would change a weight. The wasm backend copies the values into its heap when the tensor
 * is made, so there the view is passed as it is; every other backend gets a copy. See
 * docs/design.md, "Copies of the gradient", for the count per step.
 */
import * as tf from '@tensorflow/tfjs'
import { invariant, type GradientLayout } from '@ringtrain/core'
import { floatView } from './backends/kernels/backend-access.js'

/**
 * Writes `tensors[i]` into `out` at `layout.entries[i]`. A missing tensor (a variable the
 * loss does not depend on) is written as zeros, so every rank sends the same layout.
 */
export function writeTensorsInto(tensors: readonly (tf.Tensor | null | undefined)[], layout: GradientLayout, out: Float32Array): void {
  invariant(tensors.length === layout.entries.length && out.length === layout.length, 'tensors and buffer must match the layout', {
    expected: layout.length,
    got: out.length,
  })
  const backend = tf.backend()
  layout.entries.forEach((entry, i) => {
    const tensor = tensors[i]
    if (tensor == null) {
      out.fill(0, entry.offset, entry.offset + entry.length)
      return
    }
    invariant(tensor.size === entry.length, `tensor '${entry.name}' has ${tensor.size} elements, layout says ${entry.length}`)
    out.set(floatView(backend, tensor) ?? (tensor.dataSync() as Float32Array), entry.offset)
  })
}

/**
 * One new float32 tensor per layout entry, with the values of `flat` (see Note [Copy into
 * tensors]: `flat` may be reused at once). The caller disposes them.
 */
export function tensorsFromFlat(layout: GradientLayout, flat: Float32Array): tf.Tensor[] {
  invariant(flat.length === layout.length, 'flat buffer must match the layout', { expected: layout.length, got: flat.length })
  const copiedOnWrite = tf.getBackend() === 'wasm'
  return layout.entries.map((e) => {
    const values = flat.subarray(e.offset, e.offset + e.length)
    return tf.tensor(copiedOnWrite ? values : values.slice(), [...e.shape], 'float32')
  })
}

/** Reads the current values of `variables` (in layout order) into `out`. */
export function readVariablesInto(variables: readonly tf.Variable[], layout: GradientLayout, out: Float32Array): void {
  writeTensorsInto(variables, layout, out)
}

/** Assigns each variable its slice of `flat` (see Note [Copy into tensors]). */
export function assignVariablesFromFlat(variables: readonly tf.Variable[], layout: GradientLayout, flat: Float32Array): void {
  const tensors = tensorsFromFlat(layout, flat)
  variables.forEach((variable, i) => variable.assign(tensors[i]!))
  tf.dispose(tensors)
}

/** The value of a one-element tensor, as a JS number (float64). */
export function scalarValue(tensor: tf.Tensor): number {
  invariant(tensor.size === 1, `expected a scalar, got a tensor of shape [${tensor.shape.join(',')}]`)
  return (tensor.dataSync() as Float32Array)[0]!
}
