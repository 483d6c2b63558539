/**
 * Scales `gradients` in place so that their global L2 norm is at most `maxNorm`, the same
 * rule as `tf.clipByGlobalNorm` and PyTorch's `clip_grad_norm_`:
 * `g *= maxNorm / max(norm, maxNorm)`. Returns the norm before clipping.
 *
 * Apply it to the averaged gradient, after the all-reduce: every rank then holds the same
 * bytes and clips them the same way, so replicas stay identical. The norm is summed in
 * float64, in index order, so it is the same number on every rank.
 */
export function clipByGlobalNorm(gradients: Float32Array, maxNorm: number): number {
  let sumOfSquares = 0
  for (let i = 0; i < gradients.length; i++) sumOfSquares += gradients[i]! * gradients[i]!
  const norm = Math.sqrt(sumOfSquares)
  if (norm > maxNorm) {
    const scale = maxNorm / norm
    for (let i = 0; i < gradients.length; i++) gradients[i]! *= scale
  }
  return norm
}
