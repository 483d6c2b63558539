/**
 * Writes and reads one checkpoint directory (layout and manifest: @ringtrain/core's
 * checkpoint/manifest.ts).
 *
 *   step-0000120/
 *     model.json      the model in tfjs format (tf.loadLayersModel reads it for a LayersModel task)
 *     weights.bin     every weight, float32, in the model's weights-layout order
 *     optimizer.bin   the optimizer's iteration count and slots, float32 (`OptimizerState`)
 *     manifest.json   written last: its presence commits the checkpoint
 *
 * Commit protocol (as PyTorch DCP's, manifest last): the files go into a temporary sibling
 * directory and are fsynced; the directory is renamed into place and its parent fsynced;
 * then manifest.json is written to a temporary name, fsynced, renamed, and the directory
 * fsynced. A crash at any point leaves either no directory, a directory without manifest
 * (ignored, and removed by `pruneCheckpoints`), or a complete checkpoint.
 */
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import {
  CHECKPOINTS_DIR, CHECKPOINT_FORMAT, ConfigError, checkpointDirName, commitCheckpointDir, createLayout, hashBytes, outputWriteError, readManifest,
  temporaryCheckpointDir, writeFileSynced, type CheckpointManifest, type DataPosition,
} from '@ringtrain/core'
import type { OptimizerState } from '../train/optimizer-state.js'
import { modelJsonFile, weightsFile } from './save-model.js'

export const optimizerFile = 'optimizer.bin'

/** Everything a checkpoint holds, copied out of the replica at a step boundary. */
export interface CheckpointSnapshot {
  jobId: string
  ringtrainVersion: string
  /** Optimizer steps taken. */
  step: number
  position: DataPosition
  seed: number
  worldSize: number
  learningRate: number
  layoutHash: string
  /** Every weight in `weightSpecs` order. */
  weights: Float32Array
  weightSpecs: { name: string; shape: number[] }[]
  /** model.json without its weightsManifest (topology of a LayersModel, or the raw-variables format). */
  modelJson: Record<string, unknown>
  optimizerName: string
  optimizer: OptimizerState
  /** Steps skipped for non-finite gradients so far. */
  skippedSteps: number
  /** How long training waited for this checkpoint (set by the Checkpointer). */
  stallMs?: number
  /** Of `stallMs`, the in-memory copy (the rest waited for the previous write to finish). */
  copyMs?: number
}

/** The files of a checkpoint (weights.bin, optimizer.bin, model.json) and its manifest, from a snapshot. */
export function checkpointContents(snapshot: CheckpointSnapshot): { files: [string, Uint8Array][]; manifest: CheckpointManifest } {
  const weightBytes = bytesOf(snapshot.weights)
  const optimizerBytes = bytesOf(snapshot.optimizer.values)
  const modelJson = { ...snapshot.modelJson, weightsManifest: [{ paths: [weightsFile], weights: snapshot.weightSpecs.map((w) => ({ ...w, dtype: 'float32' })) }] }
  const files: [string, Uint8Array][] = [
    [weightsFile, weightBytes],
    [optimizerFile, optimizerBytes],
    [modelJsonFile, new TextEncoder().encode(JSON.stringify(modelJson))],
  ]
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    ringtrainVersion: snapshot.ringtrainVersion,
    jobId: snapshot.jobId,
    step: snapshot.step,
    position: snapshot.position,
    seed: snapshot.seed,
    worldSize: snapshot.worldSize,
    layoutHash: snapshot.layoutHash,
    weights: snapshot.weightSpecs,
    optimizer: { name: snapshot.optimizerName, state: snapshot.optimizer.layout.entries.map((e) => ({ name: e.name, shape: [...e.shape] })) },
    learningRate: snapshot.learningRate,
    skippedSteps: snapshot.skippedSteps,
    ...(snapshot.stallMs !== undefined ? { stallMs: Math.round(snapshot.stallMs * 10) / 10 } : {}),
    ...(snapshot.copyMs !== undefined ? { copyMs: Math.round(snapshot.copyMs * 10) / 10 } : {}),
    parameterHash: hashBytes(snapshot.weights),
    files: files.map(([file, bytes]) => ({ name: file, bytes: bytes.byteLength })),
    createdAt: new Date().toISOString(),
  }
  return { files, manifest }
}

/** The text of manifest.json. */
export function manifestText(manifest: CheckpointManifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`
}

/** Commits `snapshot` as `outDir/checkpoints/step-NNNNNNN` on this machine; returns that directory. Errors name the path (`OutputWriteError`). */
export async function writeCheckpoint(outDir: string, snapshot: CheckpointSnapshot): Promise<string> {
  const name = checkpointDirName(snapshot.step)
  let path = join(outDir, CHECKPOINTS_DIR)
  let temp: string | undefined
  try {
    const { files, manifest } = checkpointContents(snapshot)
    temp = await temporaryCheckpointDir(outDir, snapshot.step)
    for (const [file, bytes] of files) {
      path = join(temp, file)
      await writeFileSynced(path, bytes)
    }
    path = join(outDir, CHECKPOINTS_DIR, name)
    const dir = await commitCheckpointDir(outDir, snapshot.step, temp, manifestText(manifest))
    temp = undefined
    return dir
  } catch (error) {
    if (temp !== undefined) await rm(temp, { recursive: true, force: true }).catch(() => undefined)
    throw outputWriteError(error, path, `checkpoint ${name}`)
  }
}

/** What `readCheckpoint` gives back: the manifest, the weights and the optimizer state. */
export interface LoadedCheckpoint {
  dir: string
  manifest: CheckpointManifest
  weights: Float32Array
  optimizer: OptimizerState
}

/** Reads a committed checkpoint; throws a `ConfigError` naming the file when it is incomplete or its sizes disagree with the manifest. */
export async function readCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const manifest = await readManifest(dir)
  const files = new Map<string, Uint8Array>()
  for (const file of manifest.files) {
    const bytes = await readFile(join(dir, file.name)).catch(() => undefined)
    if (bytes !== undefined) files.set(file.name, bytes)
  }
  return checkpointFromFiles(dir, manifest, files)
}

/** A checkpoint from its manifest and file contents (read here, or streamed from the coordinator); checks sizes and the parameter hash. */
export function checkpointFromFiles(dir: string, manifest: CheckpointManifest, files: ReadonlyMap<string, Uint8Array>): LoadedCheckpoint {
  for (const file of manifest.files) {
    const size = files.get(file.name)?.byteLength ?? -1
    if (size !== file.bytes) throw new ConfigError(`checkpoint ${dir}: ${join(dir, file.name)} holds ${size < 0 ? 'nothing (missing)' : `${size} bytes`}; its manifest says ${file.bytes}. The checkpoint is damaged; resume from an older one (move this one away).`, { path: join(dir, file.name), expected: file.bytes, got: size })
  }
  const weights = floatsOf(files.get(weightsFile)!)
  const optimizerLayout = createLayout(manifest.optimizer.state)
  const optimizer = { layout: optimizerLayout, values: floatsOf(files.get(optimizerFile)!) }
  if (hashBytes(weights) !== manifest.parameterHash) {
    throw new ConfigError(`checkpoint ${dir}: weights.bin does not match the parameter hash in its manifest. The checkpoint is damaged; resume from an older one.`, { path: join(dir, weightsFile), expected: manifest.parameterHash, got: hashBytes(weights) })
  }
  return { dir, manifest, weights, optimizer }
}

function bytesOf(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
}

function floatsOf(bytes: Uint8Array): Float32Array {
  // A copy: Buffer's memory may be shared and unaligned.
  const out = new Float32Array(bytes.byteLength / 4)
  new Uint8Array(out.buffer).set(bytes.subarray(0, out.byteLength))
  return out
}
