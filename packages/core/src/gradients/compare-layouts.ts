import { LayoutMismatchError } from '../errors.js'
import { formatShape, type GradientLayout } from './layout.js'

/**
 * Checks that rank `bRank`'s layout `b` equals rank `aRank`'s layout `a` (usually rank 0's,
 * received by broadcast before step 0, as DDP's `verify_replica0_across_processes`).
 * Rejects with `LayoutMismatchError` (`E_LAYOUT_MISMATCH`) naming the first differing
 * tensor, both shapes and both ranks; a differing tensor count names the first tensor
 * that only one side has.
 */
export function compareLayouts(a: GradientLayout, aRank: number, b: GradientLayout, bRank: number): void {
  if (a.hash === b.hash && a.length === b.length && a.entries.length === b.entries.length) return
  const count = Math.max(a.entries.length, b.entries.length)
  const advice = 'Every rank must build the same model.'
  for (let i = 0; i < count; i++) {
    const x = a.entries[i]
    const y = b.entries[i]
    const context = { rank: bRank, peer: aRank, tensor: x?.name ?? y?.name, expected: x?.shape, got: y?.shape }
    if (x === undefined || y === undefined) {
      const [haveRank, lackRank, entry] = x === undefined ? [bRank, aRank, y!] : [aRank, bRank, x]
      throw new LayoutMismatchError(
        'E_LAYOUT_MISMATCH',
        `rank ${bRank}'s model differs from rank ${aRank}'s at tensor #${i} '${entry.name}': rank ${haveRank} has it with shape ${formatShape(entry.shape)}, rank ${lackRank} has only ${i} tensors. ${advice}`,
        context,
      )
    }
    if (x.name !== y.name) {
      throw new LayoutMismatchError(
        'E_LAYOUT_MISMATCH',
        `rank ${bRank}'s model differs from rank ${aRank}'s at tensor #${i}: rank ${aRank} has '${x.name}' ${formatShape(x.shape)}, rank ${bRank} has '${y.name}' ${formatShape(y.shape)}. ${advice}`,
        context,
      )
    }
    if (formatShape(x.shape) !== formatShape(y.shape) || x.dtype !== y.dtype) {
      throw new LayoutMismatchError(
        'E_LAYOUT_MISMATCH',
        `rank ${bRank}'s model differs from rank ${aRank}'s at tensor '${x.name}': rank ${aRank} has shape ${formatShape(x.shape)}, rank ${bRank} has ${formatShape(y.shape)}. ${advice}`,
        context,
      )
    }
  }
  // Same entries but different hash: one side's hash was computed differently (a bug or a forged layout).
  throw new LayoutMismatchError(
    'E_LAYOUT_MISMATCH',
    `rank ${bRank}'s layout hash ${b.hash} differs from rank ${aRank}'s ${a.hash} although their tensors agree. ${advice}`,
    { rank: bRank, peer: aRank, expected: a.hash, got: b.hash },
  )
}
