/**
 * The pack's convolution kernels compute in NHWC, the layout tfjs layers use by default
 * (`channelsLast`). `withChannelsLast` transposes NCHW inputs on the way in and releases the
 * copies afterwards; `toChannelsFirst` turns an NHWC result back into NCHW.
 */
import type { KernelBackend, TensorInfo } from '@tensorflow/tfjs'
import { callKernel, release, type PackBackendName } from './backend-access.js'

export function withChannelsLast<T>(
  backendName: PackBackendName, backend: KernelBackend, dataFormat: string | undefined,
  infos: TensorInfo[], body: (nhwc: TensorInfo[]) => T,
): T {
  if (dataFormat !== 'NCHW') return body(infos)
  const copies = infos.map((info) => callKernel(backendName, backend, 'Transpose', { x: info }, { perm: [0, 2, 3, 1] }))
  try {
    return body(copies)
  } finally {
    release(backend, ...copies)
  }
}

/** NHWC → NCHW for a result; releases `info`. */
export function toChannelsFirst(backendName: PackBackendName, backend: KernelBackend, info: TensorInfo): TensorInfo {
  const out = callKernel(backendName, backend, 'Transpose', { x: info }, { perm: [0, 3, 1, 2] })
  release(backend, info)
  return out
}
