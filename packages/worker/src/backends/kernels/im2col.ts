/**
 * Patch matrices for convolutions in NHWC, shared by the filter and input gradients.
 *
 * A convolution of x [N,H,W,Ci] by a filter [KH,KW,Ci,Co] is one matrix product between the
 * patches of x and the filter reshaped to [KH·KW·Ci, Co]. Rows of the patch matrix are the
 * P = N·OH·OW output positions, columns the K = KH·KW·Ci filter taps (kh, kw, ci), in the
 * filter's own order, so no reordering of the filter is needed.
 */
import type { backend_util } from '@tensorflow/tfjs'

export type ConvGeometry = Pick<backend_util.Conv2DInfo,
  'batchSize' | 'inHeight' | 'inWidth' | 'inChannels' | 'outHeight' | 'outWidth' | 'filterHeight' | 'filterWidth'
  | 'strideHeight' | 'strideWidth' | 'dilationHeight' | 'dilationWidth'> & { padInfo: { top: number; left: number } }

/**
 * Writes the transposed patch matrix [K, P] of `x` into `out` (zeros where a tap falls in the
 * padding; `out` must be zero-filled). Transposed so that the filter gradient is the
 * untransposed product colsT · dy[P, Co], the one wasm runs on XNNPACK's fast path
 * (11 ms against 144 ms with transposeA for [7744×288]ᵀ·[7744×64], measured on this machine).
 */
export function im2colTransposed(x: ArrayLike<number>, g: ConvGeometry, out: Float32Array): void {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = g
  const positions = g.batchSize * OH * OW
  for (let kh = 0; kh < g.filterHeight; kh++) {
    for (let kw = 0; kw < g.filterWidth; kw++) {
      const tapRow = (kh * g.filterWidth + kw) * C
      for (let n = 0; n < g.batchSize; n++) {
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * g.strideHeight - g.padInfo.top + kh * g.dilationHeight
          if (ih < 0 || ih >= H) continue
          const rowBase = (n * OH + oh) * OW
          for (let ow = 0; ow < OW; ow++) {
            const iw = ow * g.strideWidth - g.padInfo.left + kw * g.dilationWidth
            if (iw < 0 || iw >= W) continue
            const source = ((n * H + ih) * W + iw) * C
            let target = tapRow * positions + rowBase + ow
            for (let c = 0; c < C; c++, target += positions) out[target] = x[source + c]!
          }
        }
      }
    }
  }
}

/**
 * Writes the patch matrix [P, K] of `x` into `out` (zeros where a tap falls in the padding;
 * `out` must be zero-filled). With dilationWidth 1, the KW taps of one filter row read
 * KW·Ci contiguous floats of x, so each (position, kh) is one contiguous copy where the
 * window lies inside x: ≈ 3× faster than the transposed layout's strided writes for the
 * benchmark's second conv (4.5 against 14 ms, measured on this machine under load).
 */
export function im2col(x: Float32Array | Int32Array, g: ConvGeometry, out: Float32Array): void {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, filterHeight: KH, filterWidth: KW } = g
  const rowLength = KW * C
  const contiguous = g.dilationWidth === 1
  let target = 0
  for (let n = 0; n < g.batchSize; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const left = ow * g.strideWidth - g.padInfo.left
        const inside = contiguous && left >= 0 && left + KW <= W
        for (let kh = 0; kh < KH; kh++, target += rowLength) {
          const ih = oh * g.strideHeight - g.padInfo.top + kh * g.dilationHeight
          if (ih < 0 || ih >= H) continue
          const rowStart = ((n * H + ih) * W) * C
          if (inside) {
            const source = rowStart + left * C
            for (let j = 0; j < rowLength; j++) out[target + j] = x[source + j]!
            continue
          }
          for (let kw = 0; kw < KW; kw++) {
            const iw = left + kw * g.dilationWidth
            if (iw < 0 || iw >= W) continue
            const source = rowStart + iw * C
            const tap = target + kw * C
            for (let c = 0; c < C; c++) out[tap + c] = x[source + c]!
          }
        }
      }
    }
  }
}

/**
 * The adjoint of `im2col`: adds each row of `cols` [P, K] back into the input positions its
 * taps read, giving dx [N,H,W,Ci] from cols = dy[P, Co] · filterᵀ[Co, K]. `dx` must be
 * zero-filled.
 */
export function col2im(cols: ArrayLike<number>, g: ConvGeometry, dx: Float32Array): void {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = g
  const K = g.filterHeight * g.filterWidth * C
  let row = 0
  for (let n = 0; n < g.batchSize; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++, row += K) {
        for (let kh = 0; kh < g.filterHeight; kh++) {
          const ih = oh * g.strideHeight - g.padInfo.top + kh * g.dilationHeight
          if (ih < 0 || ih >= H) continue
          for (let kw = 0; kw < g.filterWidth; kw++) {
            const iw = ow * g.strideWidth - g.padInfo.left + kw * g.dilationWidth
            if (iw < 0 || iw >= W) continue
            const target = ((n * H + ih) * W + iw) * C
            const source = row + (kh * g.filterWidth + kw) * C
            for (let c = 0; c < C; c++) dx[target + c]! += cols[source + c]!
          }
        }
      }
    }
  }
}
