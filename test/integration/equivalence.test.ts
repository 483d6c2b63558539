/**
 * The framework's first test (DESIGN.md): N workers in separate OS processes, averaging
 * gradients over ZeroMQ, end with the same parameters as one process training on the
 * concatenation of all ranks' batches in the same sample order — and all ranks end
 * bitwise identical (summary.replicasIdentical compares every rank's parameter hash).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, onTestFinished, test } from 'vitest'
import { globalBatchOrder } from '@ringtrain/core'
import { loadTask, Replica, tf } from '@ringtrain/worker'
import { readSavedWeights } from '../helpers/saved-weights.js'
import { cliTestTimeout, repoRoot, runCli } from '../helpers/run-cli.js'

const steps = 20
const batchSize = 4
const seed = 7
const tolerance = 1e-5

/** One process, batch N·B in rank order: the oracle for N ranks of batch B. */
async function trainOneProcess(taskPath: string, worldSize: number): Promise<Replica> {
  await tf.setBackend('cpu')
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

describe.each(['sgd', 'adam'])('%s across processes over ZeroMQ', (optimizer) => {
  test.each([2, 3])('%i workers equal one process on the concatenated batch', async (worldSize) => {
    const out = mkdtempSync(join(tmpdir(), 'ringtrain-equivalence-'))
    onTestFinished(() => rmSync(out, { recursive: true, force: true }))
    const taskPath = join(repoRoot, `test/integration/fixtures/equivalence-${optimizer}.ts`)
    const run = await runCli(['launch', '-n', String(worldSize), taskPath, '--backend', 'cpu', '--batch-size', String(batchSize), '--max-steps', String(steps), '--seed', String(seed), '--out', out, '--quiet'])
    expect(run.code, run.output).toBe(0)

    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))
    expect(summary).toMatchObject({ workers: worldSize, steps, replicasIdentical: true })

    const reference = await trainOneProcess(taskPath, worldSize)
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
