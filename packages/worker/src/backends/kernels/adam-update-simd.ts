/**
 * Adam's update as one pass of WebAssembly SIMD over tfjs-backend-wasm's own heap: the
 * module imports the backend's `WebAssembly.Memory`, so it reads the gradient, weights and
 * moments where they lie and writes the new ones into outputs the kernel allocated.
 * tfjs's Adam runs 13 elementwise kernels per variable (≈ 6.7 ms for the 535k weights of the
 * MLP 784-512-256-10 on this machine); this pass takes ≈ 1 ms.
 *
 * The module is assembled here from opcodes (no toolchain to install). Every operation is an
 * IEEE float32 operation in the same order as `AdamOptimizer.applyGradients` (tfjs-core
 * 4.22), each rounded to float32 as tfjs's elementwise kernels round it, so the results
 * are bit-identical to the stock optimizer on cpu and on wasm.
 */
import { WASM_HEADER, WebAssemblyApi, sleb, uleb, wasmName as name, wasmSection as section, wasmVector as vector, type WasmMemory } from '@ringtrain/core'

/** Pointers are byte offsets into the heap; `length` counts float32 elements. */
export type AdamUpdateSimd = (
  value: number, firstMoment: number, secondMoment: number, gradient: number,
  newValue: number, newFirstMoment: number, newSecondMoment: number, length: number,
  beta1: number, oneMinusBeta1: number, beta2: number, oneMinusBeta2: number,
  oneMinusAccBeta1: number, oneMinusAccBeta2: number, epsilon: number, negativeLearningRate: number,
) => void

// Parameters, in AdamUpdateSimd's order: 8 i32 pointers/length, then 8 f32 constants.
const [W, M, V, G, OUT_W, OUT_M, OUT_V, LENGTH] = [0, 1, 2, 3, 4, 5, 6, 7]
const CONSTANTS = 8 // beta1, 1−beta1, beta2, 1−beta2, 1−accBeta1, 1−accBeta2, epsilon, −lr: locals 8…15
// Locals: i32 byte index and end; v128 splats of the constants; v128 and f32 temporaries.
const [I, END] = [16, 17]
const SPLATS = 18 // 18…25
const [VG, VM, VV] = [26, 27, 28]
const [SG, SM, SV] = [29, 30, 31]

const op = {
  block: 0x02, loop: 0x03, br: 0x0c, brIf: 0x0d, end: 0x0b, void: 0x40,
  localGet: 0x20, localSet: 0x21,
  i32Const: 0x41, i32Add: 0x6a, i32Mul: 0x6c, i32GeU: 0x4f, i32And: 0x71,
  f32Load: 0x2a, f32Store: 0x38, f32Sqrt: 0x91, f32Add: 0x92, f32Mul: 0x94, f32Div: 0x95,
  simd: 0xfd,
} as const
// SIMD opcodes follow the 0xfd prefix as unsigned LEB128.
const simd = { load: 0x00, store: 0x0b, f32x4Splat: 0x13, f32x4Sqrt: 0xe3, f32x4Add: 0xe4, f32x4Mul: 0xe6, f32x4Div: 0xe7 } as const

const get = (local: number) => [op.localGet, ...uleb(local)]
const set = (local: number) => [op.localSet, ...uleb(local)]

/** The arithmetic of one element (scalar) or four (SIMD), as the same instruction sequence. */
interface Lane {
  step: number
  load: number[]
  store: number[]
  mul: number[]
  add: number[]
  div: number[]
  sqrt: number[]
  constant: (k: number) => number[]
  temporaries: [g: number, m: number, v: number]
}
const vectorLane: Lane = {
  step: 16,
  load: [op.simd, ...uleb(simd.load), 2, 0], // align 2^2: tensors are only float-aligned
  store: [op.simd, ...uleb(simd.store), 2, 0],
  mul: [op.simd, ...uleb(simd.f32x4Mul)],
  add: [op.simd, ...uleb(simd.f32x4Add)],
  div: [op.simd, ...uleb(simd.f32x4Div)],
  sqrt: [op.simd, ...uleb(simd.f32x4Sqrt)],
  constant: (k) => get(SPLATS + k),
  temporaries: [VG, VM, VV],
}
const scalarLane: Lane = {
  step: 4,
  load: [op.f32Load, 2, 0],
  store: [op.f32Store, 2, 0],
  mul: [op.f32Mul],
  add: [op.f32Add],
  div: [op.f32Div],
  sqrt: [op.f32Sqrt],
  constant: (k) => get(CONSTANTS + k),
  temporaries: [SG, SM, SV],
}

/** `for (; i < end; i += step) { … }` over byte index I, for one lane kind. */
function loopOver(lane: Lane): number[] {
  const [g, m, v] = lane.temporaries
  const at = (pointer: number) => [...get(pointer), ...get(I), op.i32Add]
  const [B1, C1, B2, C2, OMAB1, OMAB2, EPS, NLR] = [0, 1, 2, 3, 4, 5, 6, 7].map(lane.constant)
  const body = [
    ...at(G), ...lane.load, ...set(g),
    // m' = m·β1 + g·(1−β1)
    ...at(M), ...lane.load, ...B1!, ...lane.mul, ...get(g), ...C1!, ...lane.mul, ...lane.add, ...set(m),
    // v' = v·β2 + g²·(1−β2)
    ...at(V), ...lane.load, ...B2!, ...lane.mul, ...get(g), ...get(g), ...lane.mul, ...C2!, ...lane.mul, ...lane.add, ...set(v),
    ...at(OUT_M), ...get(m), ...lane.store,
    ...at(OUT_V), ...get(v), ...lane.store,
    // w' = ((m'/(1−β1ᵗ)) / (√(v'/(1−β2ᵗ)) + ε))·(−lr) + w
    ...at(OUT_W),
    ...get(m), ...OMAB1!, ...lane.div,
    ...get(v), ...OMAB2!, ...lane.div, ...lane.sqrt, ...EPS!, ...lane.add,
    ...lane.div, ...NLR!, ...lane.mul,
    ...at(W), ...lane.load, ...lane.add,
    ...lane.store,
  ]
  return [
    op.block, op.void, op.loop, op.void,
    ...get(I), ...get(END), op.i32GeU, op.brIf, 1,
    ...body,
    ...get(I), op.i32Const, ...sleb(lane.step), op.i32Add, ...set(I),
    op.br, 0,
    op.end, op.end,
  ]
}

function functionBody(): number[] {
  const splatConstants = [0, 1, 2, 3, 4, 5, 6, 7].flatMap((k) => [...get(CONSTANTS + k), op.simd, ...uleb(simd.f32x4Splat), ...set(SPLATS + k)])
  const code = [
    ...splatConstants,
    // end = (length & ~3)·4: the SIMD loop, then the scalar loop for the last 0…3 elements
    ...get(LENGTH), op.i32Const, ...sleb(-4), op.i32And, op.i32Const, ...sleb(4), op.i32Mul, ...set(END),
    ...loopOver(vectorLane),
    ...get(LENGTH), op.i32Const, ...sleb(4), op.i32Mul, ...set(END),
    ...loopOver(scalarLane),
    op.end,
  ]
  const [i32, f32, v128] = [0x7f, 0x7d, 0x7b]
  const locals = vector([[2, i32], [8 + 3, v128], [3, f32]])
  const body = [...locals, ...code]
  return [...uleb(body.length), ...body]
}

/** The module's bytes: imports env.memory, exports `adamUpdate`. */
export function adamUpdateModuleBytes(): Uint8Array {
  const [i32, f32] = [0x7f, 0x7d]
  const functionType = [0x60, ...vector(Array.from({ length: 8 }, () => [i32]).concat(Array.from({ length: 8 }, () => [f32]))), 0]
  return Uint8Array.from([
    ...WASM_HEADER,
    ...section(1, vector([functionType])),
    ...section(2, vector([[...name('env'), ...name('memory'), 0x02, 0x00, 0x00]])), // memory, limits {min 0}
    ...section(3, vector([[0]])),
    ...section(7, vector([[...name('adamUpdate'), 0x00, 0]])),
    ...section(10, vector([functionBody()])),
  ])
}

const compiled = new WeakMap<WasmMemory, AdamUpdateSimd | null>()

/**
 * The SIMD update bound to `memory`, or null where it cannot run: a shared (threaded)
 * heap, or a runtime without WebAssembly SIMD. Callers then use the scalar JS loop.
 */
export function adamUpdateSimdFor(memory: WasmMemory): AdamUpdateSimd | null {
  let update = compiled.get(memory)
  if (update !== undefined) return update
  update = null
  if (!(typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer)) {
    try {
      const instance = new WebAssemblyApi.Instance(new WebAssemblyApi.Module(adamUpdateModuleBytes()), { env: { memory } })
      update = instance.exports['adamUpdate'] as AdamUpdateSimd
    } catch {
      update = null
    }
  }
  compiled.set(memory, update)
  return update
}
