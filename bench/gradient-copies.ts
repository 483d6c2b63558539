/**
 * Counts the copies of the gradient one training step makes in JavaScript, per rank, in
 * units of the whole gradient: two ranks in this process train the bench MLP (784-512-256-10,
 * batch 64, Adam) over real ZeroMQ sockets, and every byte that TypedArray `set` and `slice`
 * copy (that is every memcpy JavaScript does, the wasm backend's heap reads and writes and
 * the all-reduce's adds included) is added up per phase. What this cannot see: copies in
 * native code (libzmq, the kernel's socket buffers), listed in docs/design.md.
 *
 *   node --import tsx bench/gradient-copies.ts [wasm|cpu]
 *
 * Prints one JSON line: copies per step and rank in each phase, median of 10 steps.
 */
import { createZmqTransport, ringAllReduce } from '@ringtrain/core'
import { selectBackend, tf } from '@ringtrain/worker'
import { Replica } from '@ringtrain/worker/unstable-internals-do-not-import'
import { benchMlpTask } from './bench-mlp-task.js'

const backend = process.argv[2] === 'cpu' ? 'cpu' : 'wasm'
await selectBackend(backend)

const typedArray = Object.getPrototypeOf(Uint8Array.prototype) as { set: (...args: unknown[]) => void; slice: (...args: unknown[]) => ArrayBufferView }
const { set, slice } = typedArray
let copiedBytes = 0
typedArray.set = function (this: ArrayBufferView, source: unknown, offset?: unknown) {
  copiedBytes += ArrayBuffer.isView(source) ? (source as ArrayBufferView).byteLength : 0
  return set.call(this, source, offset)
}
typedArray.slice = function (this: ArrayBufferView, ...args: unknown[]) {
  const copy = slice.apply(this, args)
  copiedBytes += copy.byteLength
  return copy
}

const replicas = await Promise.all([0, 1].map(() => Replica.create(benchMlpTask, { seed: 1 })))
const transports = await Promise.all([0, 1].map((rank) => createZmqTransport({ rank, worldSize: 2, host: '127.0.0.1', port: 0 })))
await Promise.all(transports.map((t) => t.connect(transports.map((u) => u.endpoints))))
const batches = [0, 1].map((rank) => ({
  x: tf.randomUniform([64, 784], 0, 1, 'float32', rank + 1),
  y: tf.oneHot(tf.tensor1d(Array.from({ length: 64 }, (_, i) => (i + rank) % 10), 'int32'), 10).toFloat(),
}))
const gradientBytes = replicas[0]!.layout.length * 4

const phases = { computeGradients: [] as number[], allReduce: [] as number[], applyGradients: [] as number[] }
/** Copies made by `work` on both ranks, per rank, in whole gradients. */
async function measure(work: () => unknown): Promise<number> {
  copiedBytes = 0
  await work()
  return copiedBytes / 2 / gradientBytes
}
for (let step = 0; step < 13; step++) {
  let gradients: Float32Array[] = []
  const computed = await measure(() => { gradients = replicas.map((r, rank) => r.computeGradients(batches[rank]!).gradients) })
  const reduced = await measure(() => Promise.all(transports.map((t, rank) => ringAllReduce(t, gradients[rank]!, { step, op: 0, timeoutMs: 30_000, average: true }))))
  const applied = await measure(() => replicas.forEach((r, rank) => r.applyGradients(gradients[rank]!, step)))
  if (step < 3) continue // warm-up: slots, heap growth
  phases.computeGradients.push(computed)
  phases.allReduce.push(reduced)
  phases.applyGradients.push(applied)
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const round = (x: number) => Math.round(x * 100) / 100
const perStep = Object.fromEntries(Object.entries(phases).map(([phase, xs]) => [phase, round(median(xs))]))
console.log(JSON.stringify({ backend, gradientBytes, copiesPerStep: perStep, outsideTheRing: round(perStep.computeGradients! + perStep.applyGradients!) }))
await Promise.all(transports.map((t) => t.close()))
