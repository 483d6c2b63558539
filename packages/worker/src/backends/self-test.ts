/**
 * Start-up self-test: before step 0, a worker checks that the active backend computes
 * gradients correctly, so it refuses to train on a broken backend (a missing or wrong
 * kernel, a corrupted heap) instead of silently diverging from the other ranks.
 *
 * Each check compares an analytic gradient (tf.grads through the backend's kernels) with a
 * closed form computed in float64 from the same inputs. Inputs are small integers and
 * halves, exact in float32, so results differ from the closed form only by summation order.
 */
import * as tf from '@tensorflow/tfjs'
import { DistError } from '@ringtrain/core'

/** Largest accepted |got − expected| / max(1, |expected|) per check. */
export const SELF_TEST_TOLERANCE = 1e-4

interface Check {
  name: string
  run(): { got: Float32Array; expected: Float64Array }
}

const dense: Check = {
  // loss = Σ dy ⊙ (x·W)  ⇒  dL/dW = xᵀ·dy (the product backprop transposes)
  name: 'dense gradient dL/dW = xᵀ·dy',
  run() {
    const [n, k, m] = [3, 4, 2]
    const x = Float32Array.from({ length: n * k }, (_, i) => ((i * 7) % 5) - 2)
    const dy = Float32Array.from({ length: n * m }, (_, i) => ((i * 3) % 4) - 1.5)
    const w = Float32Array.from({ length: k * m }, (_, i) => (i % 3) - 1)
    const got = tf.tidy(() => {
      const [gradient] = tf.grads((weights: tf.Tensor) => tf.sum(tf.mul(tf.matMul(tf.tensor2d(x, [n, k]), weights), tf.tensor2d(dy, [n, m]))))([tf.tensor2d(w, [k, m])])
      return gradient!.dataSync() as Float32Array
    })
    const expected = new Float64Array(k * m)
    for (let i = 0; i < n; i++) for (let a = 0; a < k; a++) for (let b = 0; b < m; b++) expected[a * m + b]! += x[i * k + a]! * dy[i * m + b]!
    return { got, expected }
  },
}

function convCheck(which: 'filter' | 'input'): Check {
  // loss = Σ dy ⊙ conv2d(x, W, 'same')  ⇒  dL/dW[kh,kw,c,o] = Σ x[·+kh−1, ·+kw−1, c]·dy[·,·,o]
  return {
    name: `conv2d ${which} gradient (3×3, same padding)`,
    run() {
      const [n, h, w, c, o] = [2, 4, 5, 2, 3]
      const x = Float32Array.from({ length: n * h * w * c }, (_, i) => ((i * 5) % 7) - 3)
      const f = Float32Array.from({ length: 9 * c * o }, (_, i) => ((i * 3) % 5) - 2)
      const dy = Float32Array.from({ length: n * h * w * o }, (_, i) => ((i * 11) % 6) * 0.5 - 1)
      const got = tf.tidy(() => {
        const xs = tf.tensor4d(x, [n, h, w, c])
        const fs = tf.tensor4d(f, [3, 3, c, o])
        const loss = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'), tf.tensor4d(dy, [n, h, w, o])))
        const [dx, dW] = tf.grads(loss)([xs, fs])
        return (which === 'filter' ? dW! : dx!).dataSync() as Float32Array
      })
      const expected = new Float64Array(which === 'filter' ? 9 * c * o : n * h * w * c)
      for (let b = 0; b < n; b++) for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) {
        for (let kh = 0; kh < 3; kh++) for (let kw = 0; kw < 3; kw++) {
          const [ih, iw] = [i + kh - 1, j + kw - 1]
          if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue
          for (let ci = 0; ci < c; ci++) for (let co = 0; co < o; co++) {
            const xi = ((b * h + ih) * w + iw) * c + ci
            const fi = ((kh * 3 + kw) * c + ci) * o + co
            const d = dy[((b * h + i) * w + j) * o + co]!
            if (which === 'filter') expected[fi]! += x[xi]! * d
            else expected[xi]! += f[fi]! * d
          }
        }
      }
      return { got, expected }
    },
  }
}

const maxPool: Check = {
  // Windows of negative values must still pass their gradient to their maximum.
  name: 'maxPool gradient on negative inputs',
  run() {
    const x = Float32Array.from({ length: 16 }, (_, i) => -1 - ((i * 7) % 16))
    const got = tf.tidy(() => tf.grad((a: tf.Tensor) => tf.sum(tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid')))(tf.tensor4d(x, [1, 4, 4, 1])).dataSync() as Float32Array)
    const expected = new Float64Array(16)
    for (const [r, c] of [[0, 0], [0, 2], [2, 0], [2, 2]] as const) {
      let best = -1
      for (let i = r; i < r + 2; i++) for (let j = c; j < c + 2; j++) if (best < 0 || x[i * 4 + j]! > x[best]!) best = i * 4 + j
      expected[best] = 1
    }
    return { got, expected }
  },
}

export const selfTestChecks: readonly Check[] = [dense, convCheck('filter'), convCheck('input'), maxPool]

/**
 * Runs the gradient checks on the active backend. Resolves when all pass; rejects with
 * `E_BACKEND` naming the first failing check, the worst element and by how much.
 * Takes a few ms; not a synchronization point.
 */
export async function selfTest(): Promise<void> {
  const backend = tf.getBackend()
  for (const check of selfTestChecks) {
    let result: { got: Float32Array; expected: Float64Array }
    try {
      result = check.run()
    } catch (cause) {
      throw new DistError('E_BACKEND', `backend self-test failed on '${backend}': ${check.name} could not run (${cause instanceof Error ? cause.message : String(cause)}). Register the training-kernel pack (selectBackend does) or choose another --backend.`, { backend, check: check.name }, { cause })
    }
    const { got, expected } = result
    let worst = 0
    let at = -1
    for (let i = 0; i < expected.length; i++) {
      const error = Math.abs(got[i]! - expected[i]!) / Math.max(1, Math.abs(expected[i]!))
      if (!(error <= worst)) { worst = error; at = i }
    }
    if (got.length !== expected.length || !(worst <= SELF_TEST_TOLERANCE)) {
      throw new DistError('E_BACKEND', `backend self-test failed on '${backend}': ${check.name} is off by ${worst.toPrecision(3)} (relative) at element ${at}: got ${got[at]}, expected ${expected[at]} (tolerance ${SELF_TEST_TOLERANCE}). This backend computes wrong gradients; choose another --backend.`, { backend, check: check.name, expected: expected[at], got: got[at] })
    }
  }
}
