/**
 * One worker's whole life:
 *
 *  1. Bind the data-plane transport (so its address can be reported), then join the
 *     coordinator with it; the Assignment gives rank, world size, peers and the JobConfig.
 *  2. Connect the ring, select the compute backend and self-test it.
 *  3. Build the replica from the task; check before step 0 that every rank has the same
 *     backend and gradient layout (rank 0's is broadcast and compared), then take rank 0's
 *     initial weights by broadcast, so every replica starts identical.
 *  4. Train (see train-loop.ts), evaluate on this rank's eval shard, report exact sums and a
 *     parameter hash to the coordinator, rank 0 saves the model, and wait for Shutdown.
 *
 * Any error is reported to the coordinator as a typed error and ends the process non-zero.
 */
import { existsSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { ConfigError, createZmqTransport, DistError, endpointsFromWire, endpointsToWire, ProcessGroup, type JobConfig, type JobSecurity, type Transport } from '@ringtrain/core'
import { CoordinatorClient } from '../control/coordinator-client.js'
import { selectBackend } from '../backends/select-backend.js'
import { selfTest } from '../backends/self-test.js'
import { loadTask } from '../task/load-task.js'
import { taskFingerprint } from '../task/task-fingerprint.js'
import { withServedData } from '../data/served-dataset.js'
import type { Task } from '../task/define-task.js'
import type { ResizeAnswer, ResizeChange } from '../task/task-spec.js'
import { Replica } from '../train/replica.js'
import { checkSameSetup } from './check-same-setup.js'
import { evaluateShard } from './evaluate-shard.js'
import { endsRound, trainLoop, type StartPoint, type TrainResult } from './train-loop.js'
import { Checkpointer } from '../checkpoint/checkpointer.js'
import { sharesOutDir, streamCheckpoints } from '../checkpoint/output-place.js'
import { loadCheckpoint, resumeHint, shareState } from './resume.js'
import { WorkerLog } from './worker-log.js'

export interface WorkerOptions {
  /** Coordinator endpoint, e.g. tcp://10.0.0.1:29400. */
  coordinator: string
  jobId: string
  /**
   * The job's key, which every socket of the worker uses (Note [Job security] in
   * @ringtrain/core), or INSECURE.
   */
  security: JobSecurity
  localRank?: number
  /** The rank a scheduler gave this process; the coordinator follows it when it can. */
  rankHint?: number
  /** The number of workers the scheduler started; the coordinator refuses the join when its job has another size. */
  worldSizeHint?: number
  /** Where the hints came from ('SLURM_PROCID/SLURM_NTASKS'), for messages. */
  hintSource?: string
  /** This machine's path of the task, instead of the job's (the coordinator's); ranks compare fingerprints before step 0. */
  task?: string
  /** Address peers reach this worker's data socket on (default 127.0.0.1). */
  host?: string
  joinTimeoutMs?: number
  /**
   * This worker's backend, instead of the job's (a host whose GPU the others lack, say).
   * Ranks must still agree: a job refuses to mix backends before step 0.
   */
  backend?: string
  /** Ring links: `auto` (ipc to peers provably on this machine, tcp to the others), `tcp` only, or `ipc` only. */
  transport?: 'auto' | 'tcp' | 'ipc'
  /** TCP port of the data socket; 0 (default) any free one. */
  dataPort?: number
}

export async function runWorker(options: WorkerOptions): Promise<number> {
  const log = new WorkerLog()
  const host = options.host ?? '127.0.0.1'
  const transportOptions = { host, security: options.security, port: options.dataPort ?? 0, ipc: options.transport !== 'tcp', requireIpc: options.transport === 'ipc' }
  let transport = await createZmqTransport(transportOptions)
  const how = options.security.mode === 'key' ? `with the job key${options.security.encryptLocal ? ' (encrypted on this machine too)' : ''}` : 'WITHOUT a key (--insecure)'
  log.info(`listens for its ring peers on ${[transport.endpoints.tcp, transport.endpoints.ipc].filter(Boolean).join(' and ')}, ${how}.`)
  if (options.rankHint !== undefined || options.worldSizeHint !== undefined) {
    const asks = [options.rankHint !== undefined ? `rank ${options.rankHint}` : '', options.worldSizeHint !== undefined ? `a world of ${options.worldSizeHint}` : ''].filter(Boolean).join(' in ')
    log.info(`asks for ${asks} (${options.hintSource ?? 'given'}).`)
  }
  let client: CoordinatorClient | undefined
  let aborted: string | undefined
  let checkpointer: Checkpointer | undefined
  let outDir: string | undefined
  try {
    client = await CoordinatorClient.join(
      options.coordinator,
      {
        jobId: options.jobId, host: hostname(), pid: process.pid, localRank: options.localRank, dataEndpoints: endpointsToWire(transport.endpoints),
        ...(options.rankHint !== undefined ? { rankHint: options.rankHint } : {}),
        ...(options.worldSizeHint !== undefined ? { worldSizeHint: options.worldSizeHint } : {}),
        ...(options.hintSource !== undefined ? { hintSource: options.hintSource } : {}),
      },
      // At least the coordinator's own default join wait (300 s), so a worker never gives up first.
      { timeoutMs: options.joinTimeoutMs ?? 330_000, security: options.security },
    )
    const { config } = client.assignment
    outDir = config.outDir
    const elastic = config.minWorkers !== undefined
    client.onAbort((reason) => {
      // The client has logged the reason; closing the transport ends any wait in the ring.
      aborted = reason
      void transport.close()
    })
    client.startHeartbeats(() => log.step)
    let stopReason: string | undefined
    client.onStopRequest((reason) => { stopReason = reason })
    // Elastic mode: a Regroup ends the round at the next step boundary (a worker joins) or now
    // (a rank was lost: closing the ring socket ends the collective in flight).
    let regroupAtBoundary = false
    // The round the ring socket serves; undefined while this worker joins the next one (a
    // Regroup for the old round must not close the fresh socket).
    let ringRound: number | undefined
    client.onRegroup((regroup) => {
      if (regroup.round !== ringRound) return
      if (regroup.atStepBoundary) regroupAtBoundary = true
      else void transport.close()
    })

    const backend = await selectBackend(options.backend ?? config.backend)
    await selfTest()
    const device = process.env['CUDA_VISIBLE_DEVICES'] === undefined ? '' : ` with CUDA_VISIBLE_DEVICES=${process.env['CUDA_VISIBLE_DEVICES']}`
    log.info(`computes on backend ${backend.name} (${backend.description})${device}; self-test passed.`)

    const taskPath = options.task ?? config.task
    if (options.task !== undefined) log.info(`loads the task from its own path ${options.task} (the coordinator's: ${config.task}); ranks compare fingerprints before step 0.`)
    else if (!existsSync(taskPath)) {
      throw new ConfigError(`the task ${taskPath} (the coordinator's path) does not exist on ${hostname()}. Put the task there, or start this worker with --task PATH naming its copy on this machine.`, { task: taskPath, host: hostname() })
    }
    const loaded = await loadTask(taskPath)
    const loadedTask = { path: taskPath, fingerprint: taskFingerprint(loaded) }
    // --serve-data: the coordinator sends this rank's samples; the task's loaders never run here.
    const task = config.serveData === true ? withServedData(loaded, client, Math.max(config.stepTimeoutMs, 60_000)) : loaded
    const replica = await Replica.create(task, { baseLearningRate: config.learningRate, seed: config.seed })
    // Rank 0 writes outputs into --out itself only where it sees the coordinator's folder.
    const local = await sharesOutDir(config)
    const outputTimeoutMs = Math.max(config.stepTimeoutMs, 300_000)
    let start: StartPoint | undefined
    let result: TrainResult
    let resizedBatch: number | undefined
    // One pass per round: one round unless the job is elastic and loses or gains a worker.
    for (;;) {
      const { rank, worldSize, round, peers, stateFrom } = client.assignment
      Object.assign(log, { rank, worldSize, round })
      regroupAtBoundary = false
      ringRound = round
      try {
        await transport.connect(peers.map((addresses, r) => endpointsFromWire(r, addresses)), { rank, worldSize })
        // Every collective of this round goes through the group, which numbers them in call order.
        const group = new ProcessGroup(transport, { round, timeoutMs: config.stepTimeoutMs, onPosition: client.setPosition.bind(client) })
        await checkSameSetup(group, replica.layout, backend.name, loadedTask, client.assignment.hosts)
        if (stateFrom !== undefined) {
          // A later round of an elastic job: every rank takes a survivor's state.
          ;({ start, batchSize: resizedBatch } = await shareState(group, replica, stateFrom, start, log, resizedBatch))
        } else if (config.resumeFrom !== undefined) {
          // A resumed job: rank 0 loads the checkpoint, and every rank takes its state.
          const own = rank === 0 ? await loadCheckpoint(replica, config, log, client) : undefined
          ;({ start, batchSize: resizedBatch } = await shareState(group, replica, 0, own, log, resizedBatch))
        } else {
          const weights = replica.readWeights()
          await group.broadcast(weights, { step: 0 })
          if (rank !== 0) replica.writeWeights(weights)
          log.info(`has rank 0's initial weights (${weights.length} floats, layout hash ${replica.layout.hash}).`)
        }
        // A new world size (an elastic resize, or a resume with another count): the task may keep its global batch.
        if (task.onResize !== undefined && start !== undefined && start.position.shardWorldSize !== worldSize) {
          const answer = resizeAnswer(task, { worldSize, previousWorldSize: start.position.shardWorldSize, step: start.step })
          if (answer.batchSize !== undefined) resizedBatch = answer.batchSize
          if (answer.learningRateScale !== undefined) replica.learningRateScale = answer.learningRateScale
          log.info(`task '${task.name}' onResize(${start.position.shardWorldSize} → ${worldSize} ranks): ${JSON.stringify(answer)}.`)
        }
        if (rank === 0 && checkpointer === undefined) {
          checkpointer = new Checkpointer(config.outDir, config.keepCheckpoints, (line) => log.info(line), local ? undefined : streamCheckpoints(client, outputTimeoutMs))
        if (!local) log.info(`does not see the coordinator's ${config.outDir} on this machine: streams checkpoints and the model to the coordinator.`)
          if (round === 0 || stateFrom === undefined) await checkpointer.removeIncomplete()
        }
        result = await trainLoop({
          group, replica, task, config, client, log, start, checkpointer: rank === 0 ? checkpointer : undefined, elastic, batchSize: resizedBatch,
          stopRequested: () => stopReason !== undefined, regroupRequested: () => regroupAtBoundary,
        })
      } catch (error) {
        // Elastic mode: a rank lost while the round set up ends the round like one lost in a step.
        if (!elastic || aborted !== undefined || !endsRound(error)) throw error
        log.info(`round ${round} broke while it started: ${(error as Error).message}`)
        result = { steps: start?.step ?? 0, epochs: start?.position.epoch ?? 0, finalLoss: Number.NaN, samples: 0, stopped: false, ended: 'broken', position: start?.position ?? { epoch: 0, startSample: 0, shardWorldSize: worldSize, batchSize: 1, batch: 0 }, skippedSteps: start?.skippedSteps ?? 0 }
      }
      if (result.ended !== 'regroup' && result.ended !== 'broken') break
      // This rank's state for the next round (the survivor chosen there shares its own).
      start = { step: result.steps, position: result.position, skippedSteps: result.skippedSteps }
      ringRound = undefined
      await checkpointer?.flush()
      await transport.close()
      transport = await createZmqTransport(transportOptions)
      log.info(`listens for its ring peers again on ${[transport.endpoints.tcp, transport.endpoints.ipc].filter(Boolean).join(' and ')}, for the next round.`)
      await client.rejoin(endpointsToWire(transport.endpoints), config.elasticTimeoutMs + config.stepTimeoutMs)
    }
    const { rank, worldSize } = client.assignment
    // A stopped job ends with its checkpoint; evaluation and the model are for a finished one.
    const evalSums = result.stopped ? { eval: {} } : await evaluateShard(replica, task, { rank, worldSize })
    if (rank === 0 && !result.stopped) {
      if (local) await replica.saveModel(join(config.outDir, 'model'))
      else log.info(`streamed the trained model to ${await client.streamOutput('model', result.steps, await replica.modelFiles(), outputTimeoutMs)}.`)
    }
    const { position: _position, stopped, ended: _ended, ...report } = result
    const checkpoint = checkpointer?.lastCommitted
    const maxRssBytes = process.resourceUsage().maxRSS * 1024
    await client.done({
      ...report, parameterHash: replica.parameterHash(), ...evalSums, backend: backend.name, maxRssBytes,
      ...(stopped ? { stopReason: stopReason ?? 'asked to stop' } : {}),
      ...(checkpoint ? { checkpointDir: checkpoint.dir, checkpointStep: checkpoint.step } : {}),
    })
    await waitForShutdown(client, config.stepTimeoutMs)
    if (aborted) {
      log.error(`stopped after training: ${aborted} ${await resumeHint(config.outDir, checkpointer?.lastCommitted)}`)
      return 1
    }
    log.info(`finished (peak memory ${(maxRssBytes / 2 ** 20).toFixed(0)} MiB resident); shutting down.`)
    return 0
  } catch (error) {
    if (aborted) {
      // Not this worker's failure: the job was stopped (the reason is logged above).
      log.error(`stopped: ${aborted}${outDir === undefined ? '' : ` ${await resumeHint(outDir, checkpointer?.lastCommitted)}`}`)
      return 1
    }
    log.error(describeFailure(error))
    await client?.failed(error).catch(() => undefined)
    return 1
  } finally {
    await client?.close()
    await transport.close()
  }
}

/** Calls the task's onResize and checks its answer; a bad answer is the task's ConfigError. */
function resizeAnswer(task: Task, change: ResizeChange): ResizeAnswer {
  const answer = task.onResize!(change) ?? {}
  const where = { task: task.name, field: 'onResize' }
  if (typeof answer !== 'object' || answer === null) throw new ConfigError(`task '${task.name}': onResize must return { batchSize?, learningRateScale? } or nothing, got ${String(answer)}.`, { ...where, got: answer })
  const { batchSize, learningRateScale } = answer
  if (batchSize !== undefined && (!Number.isInteger(batchSize) || batchSize < 1)) throw new ConfigError(`task '${task.name}': onResize returned batchSize ${String(batchSize)} for ${change.worldSize} ranks; expected an integer ≥ 1.`, { ...where, expected: 'an integer ≥ 1', got: batchSize })
  if (learningRateScale !== undefined && !(typeof learningRateScale === 'number' && Number.isFinite(learningRateScale) && learningRateScale > 0)) throw new ConfigError(`task '${task.name}': onResize returned learningRateScale ${String(learningRateScale)}; expected a finite number > 0.`, { ...where, expected: 'a finite number > 0', got: learningRateScale })
  return { ...(batchSize !== undefined ? { batchSize } : {}), ...(learningRateScale !== undefined ? { learningRateScale } : {}) }
}

/** Resolves on Shutdown or Abort from the coordinator, or after `timeoutMs` (it may be gone). */
function waitForShutdown(client: CoordinatorClient, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs)
    const done = () => {
      clearTimeout(timer)
      resolve()
    }
    client.onShutdown(done)
    client.onAbort(done)
  })
}

function describeFailure(error: unknown): string {
  if (error instanceof DistError) return `failed: ${error.name} [${error.code}]: ${error.message}`
  return `failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`
}

export type { JobConfig, Transport }
