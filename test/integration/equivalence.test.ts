/**
 * The framework's first test (docs/design.md): N workers in separate OS processes,
 * averaging gradients over ZeroMQ, end with the same parameters as one process training on
 * the concatenation of all ranks' batches in the same sample order — and all ranks end
 * bitwise identical (summary.replicasIdentical compares every rank's parameter hash). On
 * cpu, and on the default wasm backend with the training-kernel pack (fused Adam included).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, onTestFinished, test } from 'vitest'
import { globalBatchOrder } from '@ringtrain/core/unstable-internals-do-not-import'
import { selectBackend, tf } from '@ringtrain/worker'
import { loadTask, Replica } from '@ringtrain/worker/unstable-internals-do-not-import'
import { readSavedWeights } from '../helpers/saved-weights.js'
import { cliTestTimeout, repoRoot, runCli } from '../helpers/run-cli.js'

const steps = 20
const batchSize = 4
const seed = 7
const tolerance = 1e-5

/** One process, batch N·B in rank order: the oracle for N ranks of batch B. */
async function trainOneProcess(taskPath: string, worldSize: number, backend: Backend): Promise<Replica> {
  await selectBackend(backend)
  const task = await loadTask(taskPath)
  const replica = await Replica.create(task, { seed })
  const train = await task.data.train()
  for (let step = 0; step < steps; step++) {
    const order = globalBatchOrder({ length: train.length, worldSize, seed, epoch: 0, batchIndex: step, batchSize })
    const batch = train.batch(order)
    const { gradients } = replica.computeGradients(batch)
    tf.dispose([batch.x, batch.y])
    replica.applyGradients(gradients, step)
  }
  return replica
}

type Backend = 'cpu' | 'wasm'

describe.each([['sgd', 'cpu'], ['adam', 'cpu'], ['sgd', 'wasm'], ['adam', 'wasm']] as const)('%s on %s across processes over ZeroMQ', (optimizer, backend) => {
  test.each([2, 3])('%i workers equal one process on the concatenated batch', async (worldSize) => {
    const out = mkdtempSync(join(tmpdir(), 'ringtrain-equivalence-'))
    onTestFinished(() => rmSync(out, { recursive: true, force: true }))
    const taskPath = join(repoRoot, `test/integration/fixtures/equivalence-${optimizer}.ts`)
    const run = await runCli(['launch', '-n', String(worldSize), taskPath, '--backend', backend, '--batch-size', String(batchSize), '--max-steps', String(steps), '--seed', String(seed), '--out', out, '--quiet'])
    expect(run.code, run.output).toBe(0)

    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))
    expect(summary).toMatchObject({ workers: worldSize, steps, replicasIdentical: true })

    expect(summary.backends).toEqual(new Array(worldSize).fill(backend))
    const reference = await trainOneProcess(taskPath, worldSize, backend)
    const expected = reference.readWeights()
    const saved = readSavedWeights(join(out, 'model'))
    let maxDifference = 0
    for (const entry of reference.weightsLayout.entries) {
      const got = saved.get(entry.name)
      expect(got, `weight ${entry.name} in the saved model`).toBeDefined()
      for (let i = 0; i < entry.length; i++) maxDifference = Math.max(maxDifference, Math.abs(got![i]! - expected[entry.offset + i]!))
    }
    // Training moved the weights, so equality is not the trivial kind.
    const initial = await Replica.create(await loadTask(taskPath), { seed })
    const moved = initial.readWeights().some((w, i) => Math.abs(w - expected[i]!) > 1e-3)
    expect(moved, 'training changed the weights').toBe(true)
    expect(maxDifference, `max |workers − one process| over ${expected.length} weights`).toBeLessThanOrEqual(tolerance)
  }, cliTestTimeout())
})
