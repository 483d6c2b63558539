/**
 * Just enough of the WebAssembly binary format to assemble small SIMD kernels from
 * opcodes at start-up, with no toolchain to install: LEB128 integers, sections, vectors
 * and names (https://webassembly.github.io/spec/core/binary/). Used by the all-reduce's
 * add (collectives/add-into-wasm.ts) and the worker's fused Adam.
 */

/** The WebAssembly global, which @types/node does not declare. */
export interface WasmMemory { readonly buffer: ArrayBuffer | SharedArrayBuffer }
export const WebAssemblyApi = (globalThis as unknown as {
  WebAssembly: {
    Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory & { grow(pages: number): number }
    Module: new (bytes: Uint8Array) => object
    Instance: new (module: object, imports: object) => { exports: Record<string, unknown> }
  }
}).WebAssembly

export const WASM_PAGE_BYTES = 65536

/** Unsigned LEB128. */
export function uleb(value: number): number[] {
  const bytes: number[] = []
  do {
    let byte = value & 0x7f
    value >>>= 7
    if (value !== 0) byte |= 0x80
    bytes.push(byte)
  } while (value !== 0)
  return bytes
}

/** Signed LEB128 (for i32.const). */
export function sleb(value: number): number[] {
  const bytes: number[] = []
  for (;;) {
    const byte = value & 0x7f
    value >>= 7
    if ((value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0)) return [...bytes, byte]
    bytes.push(byte | 0x80)
  }
}

export const wasmSection = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body]
export const wasmVector = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()]
export const wasmName = (text: string): number[] => [...uleb(text.length), ...Array.from(text, (c) => c.charCodeAt(0))]

/** `\0asm` version 1. */
export const WASM_HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]
