/**
 * What a pack kernel needs from the backend it runs on: float views of its inputs, fresh
 * outputs, and the backend's other kernels. Works for 'wasm' (data on the WebAssembly heap)
 * and 'cpu' (data in JS typed arrays).
 *
 * Note [Heap views go stale]: on wasm, every allocation (makeOutput, or any kernel we call)
 * may grow the heap and detach earlier views. Allocate first, then take views, and take
 * them again after calling another kernel.
 */
import * as tf from '@tensorflow/tfjs'
import type { KernelBackend, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs'
import { WebAssemblyApi, type WasmMemory } from '@ringtrain/core'

export type PackBackendName = 'wasm' | 'cpu'

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array
  wasm: { asm?: { memory?: unknown } }
}
interface CpuBackendLike {
  data: { get(dataId: object): { values: unknown } }
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: unknown): TensorInfo
}

export function isWasm(backend: KernelBackend): boolean {
  return typeof (backend as unknown as Partial<WasmBackendLike>).typedArrayFromHeap === 'function'
}

/**
 * A float32 tensor's values where `backend` keeps them, without copying: a view of the wasm
 * heap, or the cpu backend's own array. Undefined when `backend` does not hold `info`'s data
 * in that form (another backend's tensor, another dtype, a backend we do not know). Read it
 * at once and never write through it (Note [Heap views go stale]).
 */
export function floatView(backend: KernelBackend, info: TensorInfo): Float32Array | undefined {
  if (info.dtype !== 'float32') return undefined
  if (isWasm(backend)) {
    const wasm = backend as unknown as WasmBackendLike & { dataIdMap?: { has(dataId: object): boolean } }
    return wasm.dataIdMap?.has(info.dataId) ? (wasm.typedArrayFromHeap(info) as Float32Array) : undefined
  }
  const cpu = backend as unknown as Partial<CpuBackendLike> & { data?: { has?(dataId: object): boolean } }
  if (typeof cpu.data?.has !== 'function' || !cpu.data.has(info.dataId)) return undefined
  const stored = cpu.data.get(info.dataId).values
  return stored instanceof Float32Array ? stored : undefined
}

/** A view (wasm) or the array itself (cpu) of a tensor's values. Read-only by convention. */
export function values(backend: KernelBackend, info: TensorInfo): Float32Array | Int32Array {
  if (isWasm(backend)) return (backend as unknown as WasmBackendLike).typedArrayFromHeap(info) as Float32Array | Int32Array
  const stored = (backend as unknown as CpuBackendLike).data.get(info.dataId).values
  if (stored instanceof Float32Array || stored instanceof Int32Array) return stored
  return backend.readSync(info.dataId) as Float32Array
}

/** A new zero-filled output of `shape` on `backend`. See Note [Heap views go stale]. */
export function allocate(backend: KernelBackend, shape: number[], dtype: 'float32' | 'int32' = 'float32'): TensorInfo {
  if (isWasm(backend)) {
    const info = (backend as unknown as WasmBackendLike).makeOutput(shape, dtype)
    ;(backend as unknown as WasmBackendLike).typedArrayFromHeap(info).fill(0)
    return info
  }
  const length = shape.reduce((a, b) => a * b, 1)
  const zeros = dtype === 'int32' ? new Int32Array(length) : new Float32Array(length)
  return (backend as unknown as CpuBackendLike).makeTensorInfo(shape, dtype, zeros)
}

/** A new output whose values the caller writes in full (no zero fill). See Note [Heap views go stale]. */
export function allocateUninitialized(backend: KernelBackend, shape: number[]): TensorInfo {
  if (isWasm(backend)) return (backend as unknown as WasmBackendLike).makeOutput(shape, 'float32')
  const length = shape.reduce((a, b) => a * b, 1)
  return (backend as unknown as CpuBackendLike).makeTensorInfo(shape, 'float32', new Float32Array(length))
}

/** The parts of the WebAssembly JS API the pack uses (the tsconfig's libs declare none). */
/** The wasm backend's heap as a `WebAssembly.Memory` (for modules of our own that work on it), or null. */
export function wasmMemory(backend: KernelBackend): WasmMemory | null {
  if (!isWasm(backend)) return null
  const memory = (backend as unknown as WasmBackendLike).wasm.asm?.memory
  return memory instanceof WebAssemblyApi.Memory ? memory : null
}

/**
 * Runs the kernel registered for `name` on the backend's own name, as the backends' kernels
 * call each other: no tape, no engine bookkeeping. The caller disposes the result (`release`).
 */
export function callKernel(
  backendName: PackBackendName,
  backend: KernelBackend,
  name: string,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap = {},
): TensorInfo {
  const config = tf.getKernel(name, backendName)
  if (!config) throw new Error(`kernel ${name} is not registered for backend ${backendName}`)
  return config.kernelFunc({ inputs, backend, attrs }) as TensorInfo
}

/** A reshaped alias of `info` (same data, refcount taken); release it like any other result. */
export function reshaped(backendName: PackBackendName, backend: KernelBackend, info: TensorInfo, shape: number[]): TensorInfo {
  return callKernel(backendName, backend, 'Reshape', { x: info }, { shape })
}

export function release(backend: KernelBackend, ...infos: TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId)
}

/** `[a, b]` from a tfjs number-or-pair attribute (strides, dilations, filterSize). */
export function pair(value: unknown, fallback = 1): [number, number] {
  if (value == null) return [fallback, fallback]
  if (typeof value === 'number') return [value, value]
  const [a, b] = value as number[]
  return [a ?? fallback, b ?? a ?? fallback]
}
