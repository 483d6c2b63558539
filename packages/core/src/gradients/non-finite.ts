/**
 * Scans for NaN and ±Inf in flat float32 buffers (gradients before and after the ring).
 * `allFinite` is the per-step check, branch-free so that it runs at memory speed;
 * `firstNonFinite` is its slow companion, called only after `allFinite` said no, to name
 * where.
 */

/**
 * True when every element of `data` is finite. `x * 0` is ±0 for a finite x and NaN for NaN
 * or ±Inf, and NaN sticks in a sum: one pass, no branch per element. Four accumulators let
 * the additions overlap.
 */
export function allFinite(data: Float32Array): boolean {
  let a = 0
  let b = 0
  let c = 0
  let d = 0
  const n = data.length
  const whole = n - (n % 4)
  for (let i = 0; i < whole; i += 4) {
    a += data[i]! * 0
    b += data[i + 1]! * 0
    c += data[i + 2]! * 0
    d += data[i + 3]! * 0
  }
  for (let i = whole; i < n; i++) a += data[i]! * 0
  return a + b + c + d === 0
}

/** Index of the first NaN or ±Inf of `data`, or -1 when every element is finite. */
export function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) return i
  }
  return -1
}
