/**
 * The training loop of one rank. Per step (docs/design.md, "One training step"):
 * batch from this rank's shard → loss and gradients → one flat Float32Array → ring
 * all-reduce (average) → the same optimizer step on every rank → metrics to the coordinator.
 * The shard is computed locally from (seed, epoch, rank, worldSize, length), so the
 * coordinator is not on the per-step path.
 *
 * `step` is the optimizer step being computed, 0-based, everywhere: in the tags of its
 * collectives, in log prefixes and heartbeats, in its metrics line and in error messages.
 */
import { batchIndices, distributedSampler, stepsPerEpoch, type JobConfig, type ProcessGroup } from '@ringtrain/core'
import type { CoordinatorClient } from '../control/coordinator-client.js'
import type { Task } from '../task/define-task.js'
import type { Replica } from '../train/replica.js'
import { checkSamePlan } from './check-same-setup.js'
import { NonFiniteGuard } from './nonfinite-guard.js'
import { checkReplicas, replicaCheckDue } from './replica-check.js'
import { yieldToEventLoop } from './yield-to-event-loop.js'
import type { WorkerLog } from './worker-log.js'

export interface TrainResult {
  steps: number
  epochs: number
  finalLoss: number
  samples: number
  /** Optimizer steps skipped for a non-finite gradient (`--on-nonfinite skip`). */
  skippedSteps: number
}

export async function trainLoop(context: {
  group: ProcessGroup
  replica: Replica
  task: Task
  config: JobConfig
  client: CoordinatorClient
  log: WorkerLog
}): Promise<TrainResult> {
  const { group, replica, task, config, client, log } = context
  const { rank, worldSize } = group
  const train = await task.data.train()
  const batchSize = config.batchSize ?? task.batchSize
  const epochs = config.epochs ?? task.epochs
  const dropLast = task.dropLast
  const perEpoch = stepsPerEpoch({ length: train.length, worldSize, batchSize, dropLast })
  const totalSteps = Math.min(perEpoch * epochs, config.maxSteps ?? Number.POSITIVE_INFINITY)
  await checkSamePlan(group, { samples: train.length, batchSize, epochs, dropLast, totalSteps })
  log.info(`trains ${epochs} epoch(s) of ${perEpoch} step(s) on ${train.length} samples, batch ${batchSize} per rank.`)

  const hasBuffers = worldSize > 1 && replica.buffersLayout.length > 0
  const nonFinite = new NonFiniteGuard(group, replica.layout, config.onNonFinite, log)
  let step = 0
  let finalLoss = Number.NaN
  let samples = 0
  let epoch = 0
  for (; epoch < epochs && step < totalSteps; epoch++) {
    const shard = distributedSampler({ length: train.length, rank, worldSize, seed: config.seed, epoch, dropLast })
    for (let b = 0; b < perEpoch && step < totalSteps; b++) {
      log.step = step
      client.setStep(step)
      // Compute is synchronous, and with one rank nothing else awaits I/O: give heartbeat
      // timers a turn every step.
      await yieldToEventLoop()
      const started = performance.now()
      const indices = batchIndices(shard, b, batchSize, { dropLast })
      const batch = train.batch(indices)
      const { loss, gradients } = replica.computeGradients(batch)
      disposeBatch(batch)
      const computed = performance.now()
      const skip = await nonFinite.allReduce(gradients, step)
      const reduced = performance.now()
      const learningRate = skip ? replica.learningRateAt(step) : replica.applyGradients(gradients, step)
      if (hasBuffers) await syncBuffers(group, replica, step)
      if (replicaCheckDue(config, step)) await checkReplicas(group, replica, step)
      const applied = performance.now()
      void client.sendMetrics({
        step,
        epoch,
        totalSteps,
        epochs,
        loss,
        learningRate,
        samples: indices.length,
        // Local work: the batch, forward and backward, and the optimizer step.
        computeMs: computed - started + (applied - reduced),
        allReduceMs: reduced - computed,
        bytesSent: worldSize > 1 ? Math.round((2 * (worldSize - 1) * gradients.byteLength) / worldSize) : 0,
        skippedSteps: nonFinite.skippedSteps,
      })
      step++
      finalLoss = loss
      samples += indices.length
    }
  }
  log.step = step
  client.setStep(step)
  return { steps: step, epochs: epoch, finalLoss, samples, skippedSteps: nonFinite.skippedSteps }
}

/**
 * Rank 0's buffers (batch-norm statistics) to every rank, so replicas stay identical (DDP's
 * `broadcast_buffers=True`). Only models with buffers pay for it, and they are small.
 */
async function syncBuffers(group: ProcessGroup, replica: Replica, step: number): Promise<void> {
  const buffers = replica.readBuffers()
  await group.broadcast(buffers, { step })
  if (group.rank !== 0) replica.writeBuffers(buffers)
}

function disposeBatch(batch: { x: { dispose(): void } | { dispose(): void }[]; y: { dispose(): void } }): void {
  for (const x of Array.isArray(batch.x) ? batch.x : [batch.x]) x.dispose()
  batch.y.dispose()
}
