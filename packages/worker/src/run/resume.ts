/**
 * Resuming from a checkpoint (`ringtrain launch --resume OUT`): rank 0 reads the checkpoint
 * the coordinator chose (`config.resumeFrom`) into its replica after checking it against the
 * task (`loadCheckpoint`), and every rank takes rank 0's state (`shareState`, which elastic
 * rounds use too).
 */
import { ConfigError, LayoutMismatchError, createLayout, formatShape, newestCheckpoint, parseManifest, type JobConfig, type ProcessGroup } from '@ringtrain/core'
import { hostname } from 'node:os'
import { checkpointFromFiles, readCheckpoint, type LoadedCheckpoint } from '../checkpoint/checkpoint-files.js'
import type { CoordinatorClient } from '../control/coordinator-client.js'
import { sharesOutDir } from '../checkpoint/output-place.js'
import type { CommittedCheckpoint } from '../checkpoint/checkpointer.js'
import type { Replica } from '../train/replica.js'
import type { StartPoint } from './train-loop.js'
import type { WorkerLog } from './worker-log.js'

/**
 * Rank 0 only: loads `config.resumeFrom` (read here, or fetched from the coordinator when this
 * machine does not see its --out) into its replica, weights and optimizer state, after checking
 * it fits the task; returns where training continues. The other ranks then take rank 0's state
 * with `shareState`, as in an elastic round.
 */
export async function loadCheckpoint(replica: Replica, config: JobConfig, log: WorkerLog, client: CoordinatorClient): Promise<StartPoint> {
  const dir = config.resumeFrom!
  const loaded = (await sharesOutDir(config)) ? await readCheckpoint(dir) : await fetchCheckpoint(client, dir, log)
  const { manifest } = loaded
  checkSameWeights(dir, manifest.weights, replica)
  if (manifest.seed !== config.seed) {
    throw new ConfigError(`checkpoint ${dir} was trained with --seed ${manifest.seed}, this job has --seed ${config.seed}: the data order would not continue where it stopped. Resume with --seed ${manifest.seed}.`, { path: dir, field: 'seed', expected: manifest.seed, got: config.seed })
  }
  if (manifest.optimizer.name !== replica.optimizerName) {
    throw new ConfigError(`checkpoint ${dir} holds the state of optimizer '${manifest.optimizer.name}', the task uses '${replica.optimizerName}'.`, { path: dir, field: 'optimizer', expected: manifest.optimizer.name, got: replica.optimizerName })
  }
  replica.writeWeights(loaded.weights)
  await replica.writeOptimizerState(loaded.optimizer)
  log.info(`resumes from ${dir}: step ${manifest.step}, epoch ${manifest.position.epoch}, written by ${manifest.worldSize} rank(s) with ringtrain ${manifest.ringtrainVersion}.`)
  return { step: manifest.step, position: manifest.position, skippedSteps: manifest.skippedSteps ?? 0, checkpointed: true }
}

/**
 * Rank `root` shares its step, data position, skipped-step count, weights and optimizer
 * state, and every rank takes them: rank 0 after it loaded a checkpoint (a resume), or in an
 * elastic round after the first, a survivor of the last round, so that the replicas are
 * identical again whatever step each reached when that round broke.
 */
export async function shareState(group: ProcessGroup, replica: Replica, root: number, own: StartPoint | undefined, log: WorkerLog, batchSize: number | undefined): Promise<{ start: StartPoint; batchSize: number | undefined }> {
  const mine = group.rank === root
  const optimizer = mine ? await replica.readOptimizerState() : undefined
  // A task's onResize answer (batch, rate scale) travels with the state, so a newcomer trains as the others do.
  const resize = { batchSize: batchSize ?? null, learningRateScale: replica.learningRateScale }
  const header = await group.broadcastValue(mine ? { start: own, resize, optimizer: optimizer!.layout.entries.map((e) => ({ name: e.name, shape: [...e.shape] })) } : undefined, { step: 0, root })
  if (header === undefined) throw new ConfigError(`rank ${group.rank} got no state from rank ${root}.`, { rank: group.rank, peer: root })
  const start: StartPoint = header.start ?? { step: 0, position: { epoch: 0, startSample: 0, shardWorldSize: group.worldSize, batchSize: 1, batch: 0 } }
  const weights = mine ? replica.readWeights() : new Float32Array(replica.weightsLayout.length)
  // Tagged step 0, as all set-up: the ranks may have reached different steps when the last round broke.
  await group.broadcast(weights, { step: 0, root })
  const layout = createLayout(header.optimizer)
  const values = optimizer?.values ?? new Float32Array(layout.length)
  await group.broadcast(values, { step: 0, root })
  if (!mine) {
    replica.writeWeights(weights)
    await replica.writeOptimizerState({ layout, values })
    replica.learningRateScale = header.resize.learningRateScale
  }
  log.info(`takes rank ${root}'s state: step ${start.step}, epoch ${start.position.epoch}${mine ? ' (its own)' : ''}.`)
  return { start, batchSize: header.resize.batchSize ?? undefined }
}

/** The checkpoint at `dir` from the coordinator, whose --out this machine does not see. */
async function fetchCheckpoint(client: CoordinatorClient, dir: string, log: WorkerLog): Promise<LoadedCheckpoint> {
  log.info(`does not see ${dir} on this machine (${hostname()}): fetches it from the coordinator.`)
  const { manifest, files } = await client.fetchCheckpoint(dir, 300_000)
  return checkpointFromFiles(dir, parseManifest(`${dir}/manifest.json (from the coordinator)`, manifest), files)
}

/** Fails before step 0, naming the first tensor where the checkpoint's weights and the task's model differ. */
function checkSameWeights(dir: string, saved: readonly { name: string; shape: number[] }[], replica: Replica): void {
  const model = replica.weightsLayout.entries
  const count = Math.max(saved.length, model.length)
  for (let i = 0; i < count; i++) {
    const a = saved[i]
    const b = model[i]
    if (a !== undefined && b !== undefined && a.name === b.name && formatShape(a.shape) === formatShape(b.shape)) continue
    const ours = b === undefined ? 'nothing' : `'${b.name}' ${formatShape(b.shape)}`
    const theirs = a === undefined ? 'nothing' : `'${a.name}' ${formatShape(a.shape)}`
    throw new LayoutMismatchError('E_LAYOUT_MISMATCH', `checkpoint ${dir} does not fit the task's model: at weight #${i} the checkpoint has ${theirs}, the model has ${ours}. Resume with the task (and options) that wrote it.`, { path: dir, tensor: a?.name ?? b?.name, expected: a?.shape, got: b?.shape })
  }
}

/**
 * What a worker that lost its coordinator tells the user: the newest checkpoint it knows of
 * (rank 0's last commit, else the newest complete one in `outDir` as this machine sees it)
 * and the command that resumes from it.
 */
export async function resumeHint(outDir: string, committed: CommittedCheckpoint | undefined): Promise<string> {
  const found = committed ?? await newestCheckpoint(outDir).then((c) => (c ? { dir: c.dir, step: c.manifest.step } : undefined), () => undefined)
  if (found === undefined) return `No checkpoint of this job is in ${outDir} on this machine (if the coordinator ran elsewhere, look in its --out); a rerun starts from step 0.`
  return `The newest checkpoint is ${found.dir} (step ${found.step}); continue with: ringtrain launch --resume ${outDir} <the same task and options> (or coordinator --resume ${outDir}).`
}
