/** The all-reduce's add: the WebAssembly SIMD path and the JavaScript loops give the same bytes. */
import { describe, expect, it } from 'vitest'
import { mulberry32 } from '@ringtrain/core'
import { addInto, addIntoLoop, addIntoTwo, addIntoTwoLoop, WASM_MIN_LENGTH, wasmAddAvailable, wasmAddInto } from '@ringtrain/core/unstable-internals-do-not-import'

const f = Math.fround
const LENGTHS = [0, 1, 3, 7, 8, 9, WASM_MIN_LENGTH - 1, WASM_MIN_LENGTH, WASM_MIN_LENGTH + 5, 65_536, 70_001, 300_001]
const SCALES = [1, 0.5, 1 / 3, 1 / 7]

function random(length: number, seed: number): Float32Array {
  const next = mulberry32(seed)
  return Float32Array.from({ length }, () => (next() - 0.5) * 2 ** Math.floor(next() * 20 - 10))
}

/** The float32 reference, one element at a time. */
function reference(dst: Float32Array, src: Float32Array, scale: number): Float32Array {
  return dst.map((d, i) => f(f(d + src[i]!) * f(scale)))
}

function firstDifference(got: Float32Array, expected: Float32Array): string {
  const i = got.findIndex((x, k) => !Object.is(x, expected[k]))
  return i < 0 ? 'none' : `element ${i}: got ${got[i]}, expected ${expected[i]}`
}

describe('addInto / addIntoTwo', () => {
  it('WebAssembly SIMD is available on this Node', () => {
    expect(wasmAddAvailable()).toBe(true)
  })

  for (const length of LENGTHS) {
    it(`length ${length}: every path matches the float32 reference bit for bit`, () => {
      const seed = 1000 + length
      const dst = random(length, seed)
      const src = random(length + 3, seed + 1) // src may be longer than dst
      for (const add of [addInto, addIntoLoop]) {
        const sum = dst.slice()
        add(sum, src)
        expect(firstDifference(sum, reference(dst, src, 1)), `${add.name}, seed ${seed}`).toBe('none')
      }
      for (const scale of SCALES) {
        const expected = reference(dst, src, scale)
        for (const add of [addIntoTwo, addIntoTwoLoop]) {
          const viaTwo = dst.slice()
          const scratch = new Float32Array(length)
          add(viaTwo, scratch, src, scale)
          expect(firstDifference(viaTwo, expected), `${add.name} scale ${scale}, seed ${seed}`).toBe('none')
          expect(firstDifference(scratch, expected), `${add.name} scratch, scale ${scale}, seed ${seed}`).toBe('none')
        }
        const viaWasm = dst.slice()
        wasmAddInto(viaWasm, src, scale) // also below WASM_MIN_LENGTH, where addInto would loop
        expect(firstDifference(viaWasm, expected), `wasm scale ${scale}, seed ${seed}`).toBe('none')
      }
    })
  }

  it('works on views at an offset and leaves the bytes around them alone', () => {
    // 5000 elements: over WASM_MIN_LENGTH, so through WebAssembly memory and back
    const backing = random(10_000, 7)
    const before = backing.slice()
    const dst = backing.subarray(1001, 1001 + 5000)
    const src = random(5000, 8)
    const expected = reference(dst, src, 1)
    addInto(dst, src)
    expect(firstDifference(dst, expected)).toBe('none')
    expect(Array.from(backing.subarray(0, 1001))).toEqual(Array.from(before.subarray(0, 1001)))
    expect(Array.from(backing.subarray(6001))).toEqual(Array.from(before.subarray(6001)))
  })

  it('grows its WebAssembly memory for a longer operand and still adds the shorter ones', () => {
    for (const length of [1_000_000, 2000, 2_500_001]) {
      const dst = random(length, length)
      const src = random(length, length + 1)
      const expected = reference(dst, src, 1)
      addInto(dst, src)
      expect(firstDifference(dst, expected), `length ${length}`).toBe('none')
    }
  })
})
