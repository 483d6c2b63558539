/**
 * UnsortedSegmentSum, which tfjs-backend-wasm 4.22 lacks: it is the gradient of gather, so
 * without it an embedding layer cannot train on wasm. A scatter-add of each row of x into
 * row segmentIds[i] of the output; ids outside [0, numSegments) are dropped, as in
 * TensorFlow. Rows accumulate in float64 and are rounded once.
 */
import * as tf from '@tensorflow/tfjs'
import type { KernelBackend, KernelConfig, TensorInfo } from '@tensorflow/tfjs'
import { allocate, values, type PackBackendName } from './backend-access.js'

export function unsortedSegmentSumConfig(backendName: PackBackendName): KernelConfig {
  return {
    kernelName: tf.UnsortedSegmentSum,
    backendName,
    kernelFunc: ({ inputs, backend, attrs }) => unsortedSegmentSum(backend as KernelBackend, inputs['x']!, inputs['segmentIds']!,
      (attrs as unknown as tf.UnsortedSegmentSumAttrs).numSegments),
  }
}

function unsortedSegmentSum(backend: KernelBackend, x: TensorInfo, segmentIds: TensorInfo, numSegments: number): TensorInfo {
  const idCount = segmentIds.shape.reduce((a, b) => a * b, 1)
  const rowShape = x.shape.slice(segmentIds.shape.length)
  const rowLength = rowShape.reduce((a, b) => a * b, 1)
  const sums = new Float64Array(numSegments * rowLength)
  const ids = values(backend, segmentIds)
  const xValues = values(backend, x)
  for (let i = 0; i < idCount; i++) {
    const segment = ids[i]!
    if (segment < 0 || segment >= numSegments) continue
    const source = i * rowLength
    const target = segment * rowLength
    for (let j = 0; j < rowLength; j++) sums[target + j]! += xValues[source + j]!
  }
  const out = allocate(backend, [numSegments, ...rowShape], x.dtype === 'int32' ? 'int32' : 'float32')
  const outValues = values(backend, out)
  if (outValues instanceof Int32Array) for (let j = 0; j < sums.length; j++) outValues[j] = sums[j]!
  else outValues.set(sums)
  return out
}
