/**
 * Checkpoint directories: what a commit writes, what a reader accepts, what pruning keeps,
 * and what a full disk does (a real tmpfs; CI runs as root, which mounting needs).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from 'vitest'
import type * as TF from '@tensorflow/tfjs'
import { listCheckpoints, newestCheckpoint, pruneCheckpoints, type DataPosition } from '@ringtrain/core'
import { tf } from '@ringtrain/worker'
import { Replica, readCheckpoint, writeCheckpoint, type CheckpointSnapshot } from '@ringtrain/worker/unstable-internals-do-not-import'
import { loadSavedLayersModel } from '../helpers/saved-weights.js'
import { disposeBatch, regressionBatch, regressionTask } from './fixtures/tiny-tasks.ts'

let root: string
beforeAll(async () => {
  await tf.setBackend('cpu')
  root = mkdtempSync(join(tmpdir(), 'ringtrain-checkpoint-files-'))
})
afterAll(() => rmSync(root, { recursive: true, force: true }))

const position: DataPosition = { epoch: 1, startSample: 0, shardWorldSize: 2, batchSize: 8, batch: 3 }

async function trainedReplica(steps: number): Promise<Replica> {
  const replica = await Replica.create(regressionTask('adam'), { seed: 3 })
  for (let step = 0; step < steps; step++) {
    const batch = regressionBatch(step * 8, 8)
    replica.applyGradients(replica.computeGradients(batch).gradients, step)
    disposeBatch(batch)
  }
  return replica
}

async function snapshotOf(replica: Replica, step: number): Promise<CheckpointSnapshot> {
  return {
    ...(await replica.snapshot()),
    jobId: 'files', ringtrainVersion: '0.0.0-test', step, position, seed: 3, worldSize: 2,
    learningRate: replica.learningRateAt(step), layoutHash: replica.weightsLayout.hash, optimizerName: replica.optimizerName, skippedSteps: 0,
  }
}

describe('checkpoint files', () => {
  test('a committed checkpoint holds a loadable model, the optimizer state and the position; a replica restored from it steps bitwise like the original', async () => {
    const out = join(root, 'roundtrip')
    const original = await trainedReplica(3)
    const dir = await writeCheckpoint(out, await snapshotOf(original, 3))
    expect(dir).toBe(join(out, 'checkpoints', 'step-0000003'))
    expect(readdirSync(dir).sort()).toEqual(['manifest.json', 'model.json', 'optimizer.bin', 'weights.bin'])

    // tf.loadLayersModel reads model.json and weights.bin and predicts as the replica does.
    const loaded = await loadSavedLayersModel(dir)
    const probe = regressionBatch(100, 4)
    const expected = original.predict(probe.x as TF.Tensor)
    const got = loaded.predict(probe.x as TF.Tensor) as TF.Tensor
    expect(Array.from(await got.data())).toEqual(Array.from(await expected.data()))
    tf.dispose([expected, got])
    loaded.dispose()

    const checkpoint = await readCheckpoint(dir)
    expect(checkpoint.manifest).toMatchObject({ step: 3, position, seed: 3, worldSize: 2, jobId: 'files', optimizer: { name: 'adam' } })
    const restored = await Replica.create(regressionTask('adam'), { seed: 99 })
    restored.writeWeights(checkpoint.weights)
    await restored.writeOptimizerState(checkpoint.optimizer)
    for (const replica of [original, restored]) {
      const batch = regressionBatch(200, 8)
      replica.applyGradients(replica.computeGradients(batch).gradients, 3)
      disposeBatch(batch)
    }
    expect(restored.parameterHash()).toBe(original.parameterHash())
    disposeBatch(probe)
    original.dispose()
    restored.dispose()
  })

  test('directories without a manifest are ignored; pruning keeps the newest K, and removes interrupted writes when asked', async () => {
    const out = join(root, 'prune')
    const replica = await trainedReplica(1)
    for (const step of [5, 10, 15]) await writeCheckpoint(out, await snapshotOf(replica, step))
    mkdirSync(join(out, 'checkpoints', 'step-0000020'))
    writeFileSync(join(out, 'checkpoints', 'step-0000020', 'weights.bin'), 'half')
    mkdirSync(join(out, 'checkpoints', '.step-0000025.tmp-x'))
    expect((await listCheckpoints(out)).map((c) => c.manifest.step)).toEqual([5, 10, 15])
    expect((await newestCheckpoint(out))?.manifest.step).toBe(15)
    // A temporary directory, or one whose manifest is not written yet, may be another
    // process's write in progress: kept unless asked (at a start).
    const removed = await pruneCheckpoints(out, 2)
    expect(removed.map((p) => p.slice(p.lastIndexOf('/') + 1)).sort()).toEqual(['step-0000005'])
    expect(readdirSync(join(out, 'checkpoints'))).toContain('.step-0000025.tmp-x')
    expect((await pruneCheckpoints(out, 2, { removeTemporary: true })).map((p) => p.slice(p.lastIndexOf('/') + 1)).sort()).toEqual(['.step-0000025.tmp-x', 'step-0000020'])
    expect(readdirSync(join(out, 'checkpoints')).sort()).toEqual(['step-0000010', 'step-0000015'])
    replica.dispose()
  })

  test('a damaged checkpoint is refused naming the file', async () => {
    const out = join(root, 'damaged')
    const replica = await trainedReplica(1)
    const dir = await writeCheckpoint(out, await snapshotOf(replica, 1))
    truncateSync(join(dir, 'weights.bin'), 8)
    await expect(readCheckpoint(dir)).rejects.toMatchObject({ code: 'E_CONFIG', message: expect.stringContaining(`${join(dir, 'weights.bin')}`) as unknown })
    await expect(readCheckpoint(dir)).rejects.toThrow(/weights\.bin holds 8 bytes; its manifest says \d+/)
    replica.dispose()
  })

  test('a full disk fails the write with an OutputWriteError naming the path and ENOSPC, and the previous checkpoint stays complete', async () => {
    const mountPoint = mkdtempSync(join(tmpdir(), 'ringtrain-tiny-disk-'))
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mountPoint])
    onTestFinished(() => {
      execFileSync('umount', ['-l', mountPoint])
      rmSync(mountPoint, { recursive: true, force: true })
    })
    const replica = await trainedReplica(1)
    const first = await writeCheckpoint(mountPoint, await snapshotOf(replica, 1))
    // Fill what is left of the disk.
    const filler = join(mountPoint, 'filler')
    try {
      for (let i = 0; ; i++) writeFileSync(join(filler + String(i)), Buffer.alloc(16 * 1024))
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC')
    }
    const failed = await writeCheckpoint(mountPoint, await snapshotOf(replica, 2)).then(() => undefined, (error: unknown) => error)
    expect(failed).toMatchObject({ name: 'OutputWriteError', code: 'E_OUTPUT', context: { got: 'ENOSPC' } })
    expect((failed as Error).message).toMatch(new RegExp(`^could not write checkpoint step-0000002 to ${mountPoint}/checkpoints/\\S+: ENOSPC \\(the disk is full\\)`))
    // Nothing half-written is left, and the first checkpoint still loads.
    expect(readdirSync(join(mountPoint, 'checkpoints'))).toEqual(['step-0000001'])
    expect((await newestCheckpoint(mountPoint))?.dir).toBe(first)
    expect((await readCheckpoint(first)).manifest.step).toBe(1)
    expect(existsSync(join(first, 'manifest.json'))).toBe(true)
    expect(JSON.parse(readFileSync(join(first, 'manifest.json'), 'utf8'))).toMatchObject({ step: 1 })
    replica.dispose()
  })
})
