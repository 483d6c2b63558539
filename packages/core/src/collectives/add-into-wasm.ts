/**
 * The all-reduce's add as WebAssembly SIMD, four float32 lanes at a time.
 *
 * WebAssembly cannot read our ArrayBuffers, so each call copies both operands into a
 * module-owned memory (`TypedArray.set`, a memcpy), adds there, and copies the sum out.
 * For the ring's 256 KiB segments that still beats a JavaScript loop, and by more once
 * any ArrayBuffer in the process has been detached (Note [Releasing received buffers];
 * tfjs-backend-wasm growing its heap does it too): from then on V8 checks every typed
 * array access for detachment. 8 MiB in 256 KiB segments, (a + b)·s into two outputs
 * (`node --import tsx bench/add-into.ts`, see docs/benchmarks.md): the JavaScript loop
 * 3.97 ms, 5.42 ms after a detach; this 1.82 ms either way.
 *
 * Each memory is allocated at its final size and never grown (growing detaches its old
 * buffer); a longer operand gets a new module instance.
 */
import { DistError } from '../errors.js'
import { WASM_HEADER, WASM_PAGE_BYTES, WebAssemblyApi, sleb, uleb, wasmName, wasmSection, wasmVector } from '../wasm/encode.js'

type Kernel = (a: number, b: number, endBytes: number, scale: number) => void

// add(a, b, end, scale): for (i = 0; i < end; i += 16) a[i] = (a[i] + b[i]) · scale, f32x4.
const [A, B, END, SCALE, I, SPLAT] = [0, 1, 2, 3, 4, 5]
const op = { block: 0x02, loop: 0x03, br: 0x0c, brIf: 0x0d, end: 0x0b, void: 0x40, localGet: 0x20, localSet: 0x21, i32Const: 0x41, i32Add: 0x6a, i32GeU: 0x4f, simd: 0xfd } as const
const simd = { load: 0x00, store: 0x0b, f32x4Splat: 0x13, f32x4Add: 0xe4, f32x4Mul: 0xe6 } as const
const get = (local: number) => [op.localGet, ...uleb(local)]
const set = (local: number) => [op.localSet, ...uleb(local)]
const simdOp = (code: number, ...immediates: number[]) => [op.simd, ...uleb(code), ...immediates]

function moduleBytes(): Uint8Array {
  const at = (pointer: number) => [...get(pointer), ...get(I), op.i32Add]
  const code = [
    ...get(SCALE), ...simdOp(simd.f32x4Splat), ...set(SPLAT),
    op.block, op.void, op.loop, op.void,
    ...get(I), ...get(END), op.i32GeU, op.brIf, 1,
    ...at(A),
    ...at(A), ...simdOp(simd.load, 4, 0), ...at(B), ...simdOp(simd.load, 4, 0), ...simdOp(simd.f32x4Add),
    ...get(SPLAT), ...simdOp(simd.f32x4Mul),
    ...simdOp(simd.store, 4, 0),
    ...get(I), op.i32Const, ...sleb(16), op.i32Add, ...set(I),
    op.br, 0,
    op.end, op.end,
    op.end,
  ]
  const [i32, f32, v128] = [0x7f, 0x7d, 0x7b]
  const body = [...wasmVector([[1, i32], [1, v128]]), ...code]
  return Uint8Array.from([
    ...WASM_HEADER,
    ...wasmSection(1, wasmVector([[0x60, ...wasmVector([[i32], [i32], [i32], [f32]]), 0]])),
    ...wasmSection(2, wasmVector([[...wasmName('env'), ...wasmName('memory'), 0x02, 0x00, 0x00]])),
    ...wasmSection(3, wasmVector([[0]])),
    ...wasmSection(7, wasmVector([[...wasmName('add'), 0x00, 0]])),
    ...wasmSection(10, wasmVector([[...uleb(body.length), ...body]])),
  ])
}

/** Two operand regions of `capacity` float32 each, and the kernel over them. */
interface Adder { capacity: number; buffer: ArrayBuffer; kernel: Kernel }

let module: object | null | undefined
let adder: Adder | undefined

/** False where WebAssembly SIMD is missing: callers use their JavaScript loops. */
export function wasmAddAvailable(): boolean {
  if (module === undefined) {
    try {
      module = new WebAssemblyApi.Module(moduleBytes())
    } catch {
      module = null
    }
  }
  return module !== null
}

function adderFor(length: number): Adder {
  if (adder && adder.capacity >= length) return adder
  if (!wasmAddAvailable()) throw new DistError('E_INTERNAL', 'wasmAddInto was called where WebAssembly SIMD is not available; check wasmAddAvailable() first.', {})
  const capacity = (Math.max(length, adder ? 2 * adder.capacity : 0, 64 * 1024) + 3) & ~3
  const memory = new WebAssemblyApi.Memory({ initial: Math.ceil((2 * capacity * 4) / WASM_PAGE_BYTES) })
  const instance = new WebAssemblyApi.Instance(module!, { env: { memory } })
  adder = { capacity, buffer: memory.buffer as ArrayBuffer, kernel: instance.exports['add'] as Kernel }
  return adder
}

/**
 * `dst[i] = fround(fround(dst[i] + src[i]) · fround(scale))` for `i < dst.length`, and the
 * same bytes into `copy` when given. Only call when `wasmAddAvailable()`.
 */
export function wasmAddInto(dst: Float32Array, src: Float32Array, scale: number, copy?: Float32Array): void {
  const length = dst.length
  const { capacity, buffer, kernel } = adderFor(length)
  const a = new Float32Array(buffer, 0, length)
  a.set(dst)
  new Float32Array(buffer, capacity * 4, length).set(src.length === length ? src : src.subarray(0, length))
  kernel(0, capacity * 4, ((length + 3) & ~3) * 4, scale)
  dst.set(a)
  copy?.set(a)
}
