/**
 * One worker's training step without the all-reduce, as the training loop runs it:
 * `Replica.computeGradients` (loss, gradients, into the flat buffer) and `applyGradients`
 * (the optimizer update from the flat buffer). Bench MLP 784-512-256-10, batch 64, Adam,
 * wasm with the kernel pack. Run it as launched workers run (Note [Receive buffers and malloc]):
 *
 *   GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456 \
 *     node --import tsx bench/replica-step.ts
 *
 * Prints the median ms of 60 steps of each part, after 5 warm-up steps.
 */
import { selectBackend, tf } from '@ringtrain/worker'
import { Replica } from '@ringtrain/worker/unstable-internals-do-not-import'
import { benchMlpTask } from './bench-mlp-task.js'

await selectBackend('wasm')
const replica = await Replica.create(benchMlpTask, { seed: 1 })
const batch = { x: tf.randomUniform([64, 784]), y: tf.oneHot(tf.tensor1d(Array.from({ length: 64 }, (_, i) => i % 10), 'int32'), 10).toFloat() }
const computeMs: number[] = []
const applyMs: number[] = []
for (let step = 0; step < 65; step++) {
  const started = performance.now()
  const { gradients } = replica.computeGradients(batch)
  const computed = performance.now()
  replica.applyGradients(gradients, step)
  if (step < 5) continue
  computeMs.push(computed - started)
  applyMs.push(performance.now() - computed)
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
console.log(JSON.stringify({ computeGradientsMs: Number(median(computeMs).toFixed(2)), applyGradientsMs: Number(median(applyMs).toFixed(2)) }))
