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
import { CollectiveAbortedError, DistError, consumedSamples, distributedSampler, stepsPerEpoch, batchIndices, type DataPosition, type JobConfig, type ProcessGroup } from '@ringtrain/core'
import type { Checkpointer } from '../checkpoint/checkpointer.js'
import type { CheckpointSnapshot } from '../checkpoint/checkpoint-files.js'
import type { CoordinatorClient } from '../control/coordinator-client.js'
import type { Task } from '../task/define-task.js'
import type { Replica } from '../train/replica.js'
import { feedFor } from '../data/served-dataset.js'
import { checkSamePlan } from './check-same-setup.js'
import { NonFiniteGuard } from './nonfinite-guard.js'
import { checkReplicas, replicaCheckDue } from './replica-check.js'
import { yieldToEventLoop } from './yield-to-event-loop.js'
import type { WorkerLog } from './worker-log.js'
import { RINGTRAIN_VERSION } from './version.js'

export interface TrainResult {
  steps: number
  epochs: number
  finalLoss: number
  samples: number
  /** Training ended early at a step boundary because a graceful stop was asked for. */
  stopped: boolean
  /**
   * How training ended: all steps done, a graceful stop, the round ended at a step boundary
   * (`regroup`), or a collective of the round failed in elastic mode (`broken`).
   */
  ended: 'finished' | 'stopped' | 'regroup' | 'broken'
  /** Where the data stands after the last step (what a checkpoint of the end records). */
  position: DataPosition
  /** Optimizer steps skipped for a non-finite gradient (`--on-nonfinite skip`). */
  skippedSteps: number
}

/** Where training starts: step 0 of epoch 0, or a checkpoint's step and data position. */
export interface StartPoint {
  step: number
  position: DataPosition
  /** Steps skipped for non-finite gradients before it. */
  skippedSteps?: number
  /** It is a checkpoint's (a resume): the end of the job needs no new one if no step is left. */
  checkpointed?: boolean
}

/*
 * Note [Control slots]
 * ~~~~~~~~~~~~~~~~~~~~
 * Ranks must agree on decisions that change the collective schedule (stop after this step),
 * yet a decision taken by one rank alone (it heard the coordinator's StopRequest first) would
 * make it leave the ring while the others wait. So the gradient buffer carries CONTROL_SLOTS
 * floats after the gradients, all-reduced with them at no extra message: a rank writes 1 into
 * slot STOP_SLOT when it wants to stop; after the average every rank holds the same bytes, so
 * all of them see a value > 0 at the same step and stop after it, together.
 */
const STOP_SLOT = 0
/** Slot 1: end the round after this step (elastic mode: a worker waits to join). */
const REGROUP_SLOT = 1

export async function trainLoop(context: {
  group: ProcessGroup
  replica: Replica
  task: Task
  config: JobConfig
  client: CoordinatorClient
  log: WorkerLog
  /** Where to start (a resumed job); step 0 of epoch 0 by default. */
  start?: StartPoint
  /** Rank 0's checkpoint writer; absent on other ranks. */
  checkpointer?: Checkpointer
  /** True once this rank was asked to stop gracefully (see Note [Control slots]). */
  stopRequested?: () => boolean
  /** True once this rank was asked to end the round at a step boundary (elastic mode). */
  regroupRequested?: () => boolean
  /** Elastic mode: a broken collective ends the round (result `broken`) instead of the job. */
  elastic?: boolean
  /** The per-rank batch size from a task's `onResize`, instead of --batch-size or the task's. */
  batchSize?: number
}): Promise<TrainResult> {
  const { group, replica, task, config, client, log, checkpointer } = context
  const stopRequested = context.stopRequested ?? (() => false)
  const { rank, worldSize } = group
  const train = await task.data.train()
  const batchSize = context.batchSize ?? config.batchSize ?? task.batchSize
  const epochs = config.epochs ?? task.epochs
  const dropLast = task.dropLast
  const fullEpoch = stepsPerEpoch({ length: train.length, worldSize, batchSize, dropLast })

  // The epoch in progress is sharded from `startSample`; the same world and batch continue
  // the same shards at batch `first` (bitwise the uninterrupted run), another world size
  // shards what is left of the epoch's order (every sample once).
  let epoch = 0
  let startSample = 0
  let first = 0
  let step = context.start?.step ?? 0
  if (context.start) {
    const p = context.start.position
    epoch = p.epoch
    if (p.shardWorldSize === worldSize && p.batchSize === batchSize) {
      startSample = p.startSample
      first = p.batch
    } else {
      startSample = consumedSamples(p, train.length)
      log.info(`resumes epoch ${epoch} with ${worldSize} rank(s) × batch ${batchSize} where ${p.shardWorldSize} × ${p.batchSize} left it: from sample ${startSample} of ${train.length} of its order.`)
    }
  }
  const stepsOf = (e: number) => (e === epoch ? stepsPerEpoch({ length: train.length, worldSize, batchSize, dropLast, startSample }) - first : fullEpoch)
  let planned = step
  for (let e = epoch; e < epochs; e++) planned += stepsOf(e)
  const totalSteps = Math.min(planned, config.maxSteps ?? Number.POSITIVE_INFINITY)
  await checkSamePlan(group, { samples: train.length, batchSize, epochs, dropLast, totalSteps })
  log.info(`trains ${epochs} epoch(s) of ${fullEpoch} step(s) on ${train.length} samples, batch ${batchSize} per rank${step > 0 ? `, from step ${step} (epoch ${epoch})` : ''}.`)

  const hasBuffers = worldSize > 1 && replica.buffersLayout.length > 0
  const logEvery = Math.max(1, Math.ceil(totalSteps / 10))
  const wire = replica.reduceBuffer
  const stopAt = replica.layout.length + STOP_SLOT
  const regroupAt = replica.layout.length + REGROUP_SLOT
  const regroupRequested = context.regroupRequested ?? (() => false)
  const nonFinite = new NonFiniteGuard(group, replica.layout, config.onNonFinite, log)
  nonFinite.skippedSteps = context.start?.skippedSteps ?? 0
  let finalLoss = Number.NaN
  let samples = 0
  let position: DataPosition = { epoch, startSample, shardWorldSize: worldSize, batchSize, batch: first }
  const snapshot = async (): Promise<CheckpointSnapshot> => ({
    ...(await replica.snapshot()),
    jobId: config.jobId, ringtrainVersion: RINGTRAIN_VERSION, step, position, seed: config.seed, worldSize,
    learningRate: replica.learningRateAt(step), layoutHash: replica.weightsLayout.hash, optimizerName: replica.optimizerName,
    skippedSteps: nonFinite.skippedSteps,
  })
  let lastCheckpointStep = context.start?.checkpointed ? step : -1
  let ended: TrainResult['ended'] = 'finished'
  try {
    for (; epoch < epochs && step < totalSteps && ended === 'finished'; epoch++, startSample = 0, first = 0) {
      const shard = distributedSampler({ length: train.length, rank, worldSize, seed: config.seed, epoch, dropLast, startSample })
      const batches = stepsPerEpoch({ length: train.length, worldSize, batchSize, dropLast, startSample })
      // Served data (--serve-data) arrives ahead of the batches that use it; local data is there.
      const feed = feedFor(train, shard)
      for (let b = first; b < batches && step < totalSteps; b++) {
        const s = step
        log.step = s
        client.setStep(s)
        // Compute is synchronous, and with one rank nothing else awaits I/O: give heartbeat
        // timers a turn every step.
        await yieldToEventLoop()
        const started = performance.now()
        const indices = batchIndices(shard, b, batchSize, { dropLast })
        await feed.ready(b * batchSize, b * batchSize + indices.length)
        const batch = train.batch(indices)
        const { loss, gradients } = replica.computeGradients(batch)
        disposeBatch(batch)
        wire.fill(0, replica.layout.length)
        if (stopRequested()) wire[stopAt] = 1
        if (regroupRequested()) wire[regroupAt] = 1
        const computed = performance.now()
        // The guard all-reduces the whole buffer, control slots included, and checks it.
        const skip = await nonFinite.allReduce(wire, s)
        const reduced = performance.now()
        const learningRate = skip ? replica.learningRateAt(s) : replica.applyGradients(gradients, s)
        // The step is applied: from here on the position is past it, whatever fails next.
        step++
        finalLoss = loss
        samples += indices.length
        const endOfEpoch = b === batches - 1
        position = endOfEpoch
          ? { epoch: epoch + 1, startSample: 0, shardWorldSize: worldSize, batchSize, batch: 0 }
          : { epoch, startSample, shardWorldSize: worldSize, batchSize, batch: b + 1 }
        if (hasBuffers) await syncBuffers(group, replica, s)
        if (replicaCheckDue(config, s)) await checkReplicas(group, replica, s)
        const applied = performance.now()
        void client.sendMetrics({
          step: s,
          epoch,
          totalSteps,
          epochs,
          loss,
          learningRate,
          samples: indices.length,
          // Local work: the batch, forward and backward, and the optimizer step.
          computeMs: computed - started + (applied - reduced),
          allReduceMs: reduced - computed,
          bytesSent: worldSize > 1 ? Math.round((2 * (worldSize - 1) * wire.byteLength) / worldSize) : 0,
          skippedSteps: nonFinite.skippedSteps,
        })
        // About ten lines a job (and the last step): a worker's own progress, whoever started it.
        if (step % logEvery === 0 || step === totalSteps) log.info(`step ${step}/${totalSteps} (epoch ${epoch + 1}/${epochs}), loss ${loss.toFixed(4)}, ${Math.round(indices.length / ((applied - started) / 1000))} samples/s on this rank.`)
        if (wire[stopAt]! > 0) ended = 'stopped'
        else if (wire[regroupAt]! > 0) ended = 'regroup'
        if (ended === 'stopped') log.info(`stops after step ${s} as asked; every rank stops here.`)
        if (ended === 'regroup') log.info(`ends round ${group.round} after step ${s} to take in a new worker; every rank ends it here.`)
        const due = config.checkpointEvery === undefined ? endOfEpoch : config.checkpointEvery > 0 && step % config.checkpointEvery === 0
        if (checkpointer && due && ended === 'finished' && step < totalSteps) {
          await checkpointer.take(snapshot)
          lastCheckpointStep = step
        }
        if (ended !== 'finished') break
      }
      feed.close()
    }
  } catch (error) {
    // Elastic mode: a collective that broke (a rank lost, the round ended) ends this round
    // only; the step in flight was not applied here unless `step` moved past it.
    if (!(context.elastic && endsRound(error))) throw error
    log.info(`round ${group.round} broke at step ${step}: ${(error as Error).message}`)
    ended = 'broken'
  }
  if (ended === 'regroup' || ended === 'broken') {
    log.step = step
    return { steps: step, epochs: position.epoch, finalLoss, samples, stopped: false, ended, position, skippedSteps: nonFinite.skippedSteps }
  }
  const stopped = ended === 'stopped'
  // The end of the job (or a graceful stop) is always checkpointed, unless the last step just was.
  if (checkpointer && step !== lastCheckpointStep) await checkpointer.take(snapshot)
  await checkpointer?.flush()
  log.step = step
  client.setStep(step)
  return { steps: step, epochs: stopped ? position.epoch : epoch, finalLoss, samples, stopped, ended, position, skippedSteps: nonFinite.skippedSteps }
}

/** Errors that, in an elastic job, end the round rather than the job: a collective that broke (a peer lost, a timeout, the ring socket closed by a Regroup). */
export function endsRound(error: unknown): boolean {
  return error instanceof CollectiveAbortedError || (error instanceof DistError && error.code === 'E_CLOSED')
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
