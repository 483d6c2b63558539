/**
 * The training loop of one rank. Per step (DESIGN.md "One training step"):
 * batch from this rank's shard → loss and gradients → one flat Float32Array → ring
 * all-reduce (average) → the same optimizer step on every rank → metrics to the coordinator.
 * The shard is computed locally from (seed, epoch, rank, worldSize, length), so the
 * coordinator is not on the per-step path.
 */
import { batchIndices, broadcast, distributedSampler, ringAllReduce, stepsPerEpoch, type JobConfig, type Transport } from '@ringtrain/core'
import type { CoordinatorClient } from '../control/coordinator-client.js'
import type { Task } from '../task/define-task.js'
import type { Replica } from '../train/replica.js'
import { checkSamePlan } from './check-same-setup.js'
import { yieldToEventLoop } from './yield-to-event-loop.js'
import type { WorkerLog } from './worker-log.js'

export interface TrainResult {
  steps: number
  epochs: number
  finalLoss: number
  samples: number
}

export async function trainLoop(context: {
  transport: Transport
  replica: Replica
  task: Task
  config: JobConfig
  client: CoordinatorClient
  log: WorkerLog
}): Promise<TrainResult> {
  const { transport, replica, task, config, client, log } = context
  const { rank, worldSize } = transport
  const train = await task.data.train()
  const batchSize = config.batchSize ?? task.batchSize
  const epochs = config.epochs ?? task.epochs
  const dropLast = task.dropLast
  const perEpoch = stepsPerEpoch({ length: train.length, worldSize, batchSize, dropLast })
  const totalSteps = Math.min(perEpoch * epochs, config.maxSteps ?? Number.POSITIVE_INFINITY)
  const round = log.round
  await checkSamePlan(transport, { samples: train.length, batchSize, epochs, dropLast, totalSteps }, { round, timeoutMs: config.stepTimeoutMs })
  log.info(`trains ${epochs} epoch(s) of ${perEpoch} step(s) on ${train.length} samples, batch ${batchSize} per rank.`)

  const hasBuffers = worldSize > 1 && replica.buffersLayout.length > 0
  let step = 0
  let finalLoss = Number.NaN
  let samples = 0
  let epoch = 0
  for (; epoch < epochs && step < totalSteps; epoch++) {
    const shard = distributedSampler({ length: train.length, rank, worldSize, seed: config.seed, epoch, dropLast })
    for (let b = 0; b < perEpoch && step < totalSteps; b++) {
      // Compute is synchronous, and with one rank nothing else awaits I/O: give heartbeat
      // timers a turn every step.
      await yieldToEventLoop()
      const started = performance.now()
      const indices = batchIndices(shard, b, batchSize, { dropLast })
      const batch = train.batch(indices)
      const { loss, gradients } = replica.computeGradients(batch)
      disposeBatch(batch)
      const computed = performance.now()
      // Tag step = optimizer step + 1: step 0 belongs to the set-up collectives.
      await ringAllReduce(transport, gradients, { round, step: step + 1, op: 0, timeoutMs: config.stepTimeoutMs, average: true })
      const reduced = performance.now()
      replica.applyGradients(gradients, step)
      if (hasBuffers) await syncBuffers(transport, replica, { round, step: step + 1, op: 1, timeoutMs: config.stepTimeoutMs })
      const applied = performance.now()
      step++
      log.step = step
      finalLoss = loss
      samples += indices.length
      void client.sendMetrics({
        step: step - 1,
        epoch,
        totalSteps,
        epochs,
        loss,
        samples: indices.length,
        // Local work: the batch, forward and backward, and the optimizer step.
        computeMs: computed - started + (applied - reduced),
        allReduceMs: reduced - computed,
        bytesSent: worldSize > 1 ? Math.round((2 * (worldSize - 1) * gradients.byteLength) / worldSize) : 0,
      })
    }
  }
  return { steps: step, epochs: epoch, finalLoss, samples }
}

/**
 * Rank 0's buffers (batch-norm statistics) to every rank, so replicas stay identical (DDP's
 * `broadcast_buffers=True`). Only models with buffers pay for it, and they are small.
 */
async function syncBuffers(transport: Transport, replica: Replica, tag: { round: number; step: number; op: number; timeoutMs: number }): Promise<void> {
  const buffers = replica.readBuffers()
  await broadcast(transport, buffers, { root: 0, ...tag })
  if (transport.rank !== 0) replica.writeBuffers(buffers)
}

function disposeBatch(batch: { x: { dispose(): void } | { dispose(): void }[]; y: { dispose(): void } }): void {
  for (const x of Array.isArray(batch.x) ? batch.x : [batch.x]) x.dispose()
  batch.y.dispose()
}
