/**
 * The all-reduce's owner-step add, `dst = scratch = (dst + src) · ½`, over 8 MiB in 256 KiB
 * segments as the ring does it: the JavaScript loop against WebAssembly SIMD (with its
 * copies in and out), before and after an ArrayBuffer in the process has been detached
 * (which makes V8 check every typed array access; see add-into-wasm.ts).
 *
 *   node --import tsx bench/add-into.ts
 *
 * Prints the median ms of 30 runs per case.
 */
import { addIntoTwoLoop, detachArrayBuffer, wasmAddInto } from '@ringtrain/core/unstable-internals-do-not-import'

const SEGMENT = 64 * 1024 // float32 elements: 256 KiB
const SEGMENTS = 32
const dst = new Float32Array(SEGMENT * SEGMENTS).fill(1)
const scratch = new Float32Array(dst.length)
const received = Array.from({ length: SEGMENTS }, () => new Float32Array(SEGMENT).fill(2))

type Add = (dst: Float32Array, scratch: Float32Array, src: Float32Array) => void
const cases: [string, Add][] = [
  ['javascript loop', (d, s, src) => addIntoTwoLoop(d, s, src, 0.5)],
  ['webassembly simd', (d, s, src) => wasmAddInto(d, src, 0.5, s)],
]

function medianMs(add: Add): number {
  const times: number[] = []
  for (let run = 0; run < 30; run++) {
    const started = performance.now()
    for (let k = 0; k < SEGMENTS; k++) add(dst.subarray(k * SEGMENT, (k + 1) * SEGMENT), scratch.subarray(k * SEGMENT, (k + 1) * SEGMENT), received[k]!)
    times.push(performance.now() - started)
  }
  return times.sort((a, b) => a - b)[15]!
}

for (const phase of ['before a detach', 'after a detach']) {
  if (phase === 'after a detach') detachArrayBuffer(new ArrayBuffer(8))
  for (const [name, add] of cases) {
    medianMs(add) // warm up
    console.log(`${phase.padEnd(16)} ${name.padEnd(17)} ${medianMs(add).toFixed(2)} ms per 8 MiB`)
  }
}
