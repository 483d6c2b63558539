/**
 * Helpers for checking the training-kernel pack against a reference: seeded data, running one
 * kernel on a chosen backend from plain arrays, and a norm-relative error.
 */
import { tf } from '@ringtrain/worker'

/** Deterministic values in [-1, 1) (a 32-bit LCG), so a failing case can be rerun from its seed. */
export function seeded(length: number, seed: number): Float32Array {
  const out = new Float32Array(length)
  let state = (seed * 2654435761) >>> 0
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    out[i] = state / 2 ** 31 - 1
  }
  return out
}

export interface ArrayInput { readonly values: Float32Array | Int32Array; readonly shape: readonly number[]; readonly dtype?: 'float32' | 'int32' }

/**
 * Runs `kernelName` on `backendName` with tensors made there from plain arrays (never moved
 * across backends: see the guard test in backends.test.ts) and returns the output's values.
 */
export async function runOn(
  backendName: 'cpu' | 'wasm', kernelName: string, inputs: Readonly<Record<string, ArrayInput>>, attrs: Readonly<Record<string, unknown>>,
): Promise<{ values: Float32Array; shape: number[] }> {
  await tf.setBackend(backendName)
  return tf.tidy(() => {
    const tensors: Record<string, tf.Tensor> = {}
    for (const [name, input] of Object.entries(inputs)) tensors[name] = tf.tensor(input.values, [...input.shape], input.dtype ?? 'float32')
    const out = tf.engine().runKernel(kernelName, tensors as never, attrs as never) as tf.Tensor
    return { values: Float32Array.from(out.dataSync() as Float32Array), shape: out.shape }
  })
}

/** max |got − expected| / max |expected|: the error relative to the result's scale. */
export function relativeError(got: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (got.length !== expected.length) return Infinity
  let scale = 1e-30
  let worst = 0
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]!))
    const difference = Math.abs(got[i]! - expected[i]!)
    if (!(difference <= worst)) worst = difference // NaN-safe: a NaN makes the error NaN
  }
  return worst / scale
}

/** Σ a·b in float64, for adjoint checks: ⟨conv(x, W), dy⟩ = ⟨W, dW⟩ = ⟨x, dx⟩. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!
  return sum
}

export function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}
