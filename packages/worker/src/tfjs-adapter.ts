/**
 * The only place a `tf.Tensor` meets a `Float32Array` (see DESIGN.md): gradients and
 * weights go from tensors into one flat buffer in layout order, and back.
 *
 * Note [Copy into tensors]: the cpu backend keeps a reference to the typed array a tensor
 * is made from, and `Variable.assign` adopts the tensor's data. Every tensor made here
 * from a caller's buffer is therefore made from a copy, so that reusing the buffer for
 * the next step can never change a weight.
 */
import * as tf from '@tensorflow/tfjs'
import { invariant, type GradientLayout } from '@ringtrain/core'

/**
 * Writes `tensors[i]` into `out` at `layout.entries[i]`. A missing tensor (a variable the
 * loss does not depend on) is written as zeros, so every rank sends the same layout.
 */
export function writeTensorsInto(tensors: readonly (tf.Tensor | null | undefined)[], layout: GradientLayout, out: Float32Array): void {
  invariant(tensors.length === layout.entries.length && out.length === layout.length, 'tensors and buffer must match the layout', {
    expected: layout.length,
    got: out.length,
  })
  layout.entries.forEach((entry, i) => {
    const tensor = tensors[i]
    if (tensor == null) {
      out.fill(0, entry.offset, entry.offset + entry.length)
      return
    }
    invariant(tensor.size === entry.length, `tensor '${entry.name}' has ${tensor.size} elements, layout says ${entry.length}`)
    out.set(tensor.dataSync() as Float32Array, entry.offset)
  })
}

/** One new float32 tensor per layout entry, copied from `flat` (see Note [Copy into tensors]). The caller disposes them. */
export function tensorsFromFlat(layout: GradientLayout, flat: Float32Array): tf.Tensor[] {
  invariant(flat.length === layout.length, 'flat buffer must match the layout', { expected: layout.length, got: flat.length })
  return layout.entries.map((e) => tf.tensor(flat.slice(e.offset, e.offset + e.length), [...e.shape], 'float32'))
}

/** Reads the current values of `variables` (in layout order) into `out`. */
export function readVariablesInto(variables: readonly tf.Variable[], layout: GradientLayout, out: Float32Array): void {
  writeTensorsInto(variables, layout, out)
}

/** Assigns each variable its slice of `flat` (copied). */
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
