/**
 * Chooses the worker's tfjs compute backend, once per process, before the model is built.
 * See docs/design.md, "Compute backends": `tensorflow` and `webgpu` are optional peers loaded only
 * when installed; `wasm` is the embedded default; `cpu` always works.
 */
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { BACKEND_NAMES, ConfigError, DistError, type BackendName } from '@ringtrain/core'
import { registerTrainingKernels } from './register-pack.js'


export interface SelectBackendOptions {
  /**
   * Register the training-kernel pack on wasm and cpu (default true). Off only to measure or
   * test the stock kernels: stock wasm cannot train convolutions, depthwise convolutions or
   * embeddings, and its MaxPoolGrad drops gradients (see register-pack.ts).
   */
  trainingKernels?: boolean
}

export interface SelectedBackend {
  /** The tfjs backend now active: 'tensorflow', 'webgpu', 'wasm' or 'cpu'. */
  name: Exclude<BackendName, 'auto'>
  /** One line for the start-up log, e.g. "wasm (tfjs-backend-wasm 4.22.0, SIMD, 1 thread)". */
  description: string
}

const require = createRequire(import.meta.url)

function isInstalled(packageName: string): boolean {
  try {
    require.resolve(packageName)
    return true
  } catch {
    return false
  }
}

/** Loads a package that is not a declared dependency, without letting bundlers or tsc see it. */
async function importOptional(packageName: string): Promise<unknown> {
  return import(/* @vite-ignore */ packageName)
}

async function selectTensorflow(): Promise<SelectedBackend> {
  // tfjs-node-gpu first: it registers the same 'tensorflow' backend, with CUDA kernels.
  for (const packageName of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    if (!isInstalled(packageName)) continue
    try {
      await importOptional(packageName)
    } catch (cause) {
      const needs = packageName.endsWith('-gpu') ? ' It needs CUDA 11.2 + cuDNN 8.1 and an NVIDIA driver;' : ''
      throw new DistError('E_BACKEND', `--backend tensorflow: ${packageName} is installed but failed to load.${needs} see the cause below, or use --backend wasm.`, { backend: 'tensorflow' }, { cause })
    }
    if (!(await tf.setBackend('tensorflow'))) {
      throw new DistError('E_BACKEND', `--backend tensorflow: ${packageName} loaded but tf.setBackend('tensorflow') failed; use --backend wasm.`, { backend: 'tensorflow' })
    }
    return { name: 'tensorflow', description: `tensorflow (${packageName})` }
  }
  throw new DistError(
    'E_BACKEND',
    "--backend tensorflow: neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed. Install '@tensorflow/tfjs-node-gpu@4.22.0' (Linux x64, needs CUDA 11.2 + cuDNN 8.1 for tfjs-node-gpu) or '@tensorflow/tfjs-node@4.22.0' (CPU, prebuilt for Linux, macOS and Windows) next to ringtrain, or use --backend wasm.",
    { backend: 'tensorflow' },
  )
}

async function selectWebgpu(): Promise<SelectedBackend> {
  const missing = ['@tensorflow/tfjs-backend-webgpu', 'webgpu'].filter((name) => !isInstalled(name))
  if (missing.length > 0) {
    throw new DistError('E_BACKEND', `--backend webgpu: ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not installed. Install '@tensorflow/tfjs-backend-webgpu@4.22.0' and 'webgpu' (Dawn for Node), or use --backend wasm.`, { backend: 'webgpu' })
  }
  const dawn = (await importOptional('webgpu')) as { create?: (options: string[]) => unknown; globals?: object }
  if (dawn.globals) Object.assign(globalThis, dawn.globals)
  const g = globalThis as { navigator?: { gpu?: unknown } }
  if (dawn.create && !g.navigator?.gpu) {
    Object.defineProperty(globalThis, 'navigator', { value: { ...(g.navigator ?? {}), gpu: dawn.create([]) }, configurable: true })
  }
  await importOptional('@tensorflow/tfjs-backend-webgpu')
  // setBackend resolves false (and logs) when no adapter is found: do not train on a fallback silently.
  const ok = await tf.setBackend('webgpu').catch(() => false)
  if (!ok) {
    throw new DistError('E_BACKEND', '--backend webgpu: no WebGPU adapter was found (tf.setBackend(\'webgpu\') returned false); check the GPU driver, or use --backend wasm.', { backend: 'webgpu' })
  }
  return { name: 'webgpu', description: 'webgpu (@tensorflow/tfjs-backend-webgpu via Dawn)' }
}

/** The folder of the installed tfjs-backend-wasm's .wasm files, with a trailing slash. */
export function wasmBinariesDirectory(): string {
  const entry = require.resolve('@tensorflow/tfjs-backend-wasm')
  // entry is .../tfjs-backend-wasm/dist/tf-backend-wasm.node.js: the binaries sit beside it.
  return `${dirname(entry)}/`
}

async function selectWasm(): Promise<SelectedBackend> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm')
  // In Node the backend cannot locate its binaries on its own: point it at the package.
  // setWasmPaths must precede the backend's first initialization; later calls are ignored.
  if (!tf.engine().registry['wasm']) wasm.setWasmPaths(wasmBinariesDirectory())
  const ok = await tf.setBackend('wasm').catch((cause: unknown) => {
    throw new DistError('E_BACKEND', `--backend wasm: the WebAssembly backend failed to start (binaries from ${wasmBinariesDirectory()}).`, { backend: 'wasm' }, { cause })
  })
  if (!ok) throw new DistError('E_BACKEND', `--backend wasm: tf.setBackend('wasm') returned false (binaries from ${wasmBinariesDirectory()}).`, { backend: 'wasm' })
  await tf.ready()
  return { name: 'wasm', description: `wasm (tfjs-backend-wasm ${wasm.version_wasm}, ${wasm.getThreadsCount()} thread${wasm.getThreadsCount() === 1 ? '' : 's'})` }
}

async function selectCpu(): Promise<SelectedBackend> {
  if (!(await tf.setBackend('cpu'))) throw new DistError('E_BACKEND', "--backend cpu: tf.setBackend('cpu') returned false.", { backend: 'cpu' })
  return { name: 'cpu', description: `cpu (tfjs-backend-cpu ${tf.version_cpu}, pure JavaScript)` }
}

/**
 * Activates `name` as the tfjs backend, once per process, before any tensor is made (tensors
 * made on one backend and read by another's kernels can be corrupted). `auto` tries
 * tensorflow, then webgpu with an adapter, then wasm, then cpu, and keeps the first that
 * starts. On wasm and cpu it then registers the training-kernel pack. Rejects with
 * `E_BACKEND` when an explicitly requested backend is not installed or fails to start,
 * saying what to install.
 */
export async function selectBackend(name: BackendName | string, options: SelectBackendOptions = {}): Promise<SelectedBackend> {
  const selected = await activate(name)
  if (options.trainingKernels === false || (selected.name !== 'wasm' && selected.name !== 'cpu')) return selected
  const pack = registerTrainingKernels(selected.name)
  return { ...selected, description: `${selected.description} + training-kernel pack (${pack.kernelNames.length} kernels)` }
}

async function activate(name: string): Promise<SelectedBackend> {
  switch (name) {
    case 'tensorflow': return selectTensorflow()
    case 'webgpu': return selectWebgpu()
    case 'wasm': return selectWasm()
    case 'cpu': return selectCpu()
    case 'auto': {
      // The full reasons are what `--backend tensorflow` (or webgpu) says; here, one word each.
      const skipped: string[] = []
      const candidates = [['tensorflow', selectTensorflow], ['webgpu', selectWebgpu], ['wasm', selectWasm]] as const
      for (const [candidateName, candidate] of candidates) {
        try {
          const selected = await candidate()
          return { ...selected, description: `${selected.description}; auto chose it${skipped.length ? ` over ${skipped.join(', ')}` : ''}` }
        } catch (error) {
          const code = error instanceof DistError ? error.code : 'error'
          skipped.push(`${candidateName} (${code === 'E_BACKEND' ? 'not available' : 'failed'})`)
        }
      }
      const selected = await selectCpu()
      return { ...selected, description: `${selected.description}; auto chose it over ${skipped.join(', ')}` }
    }
    default:
      throw new ConfigError(`--backend must be one of ${BACKEND_NAMES.join(', ')}; got '${String(name)}'.`, { expected: BACKEND_NAMES, got: name })
  }
}

/**
 * The `CUDA_VISIBLE_DEVICES` value for a worker: one process per GPU, so local rank r sees
 * GPU r mod gpusPerNode (ranks beyond the GPU count share round-robin). With no GPUs, ''.
 */
export function cudaVisibleDevicesFor(localRank: number, gpusPerNode: number): string {
  if (!Number.isInteger(localRank) || localRank < 0) throw new ConfigError(`localRank (${localRank}) must be a non-negative integer.`, { got: localRank })
  if (!Number.isInteger(gpusPerNode) || gpusPerNode < 0) throw new ConfigError(`gpusPerNode (${gpusPerNode}) must be a non-negative integer.`, { got: gpusPerNode })
  return gpusPerNode === 0 ? '' : String(localRank % gpusPerNode)
}
