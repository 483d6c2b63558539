/**
 * Checkpoints on disk: `OUT/checkpoints/step-NNNNNNN/`, one directory per committed
 * checkpoint, named by the number of optimizer steps taken before it (the step training
 * resumes at). A directory is complete exactly when it holds `manifest.json`, which the
 * writer puts there last (temporary file, fsync, rename) after every other file was written,
 * fsynced and the directory renamed into place. Anything else under `checkpoints/` is an
 * interrupted write: ignored, and removed by `pruneCheckpoints`.
 *
 * This module knows the layout and the manifest; writing the model files is the worker's
 * (it needs tfjs), finding and choosing a checkpoint is everyone's.
 */
import { readdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError } from '../errors.js'

export const CHECKPOINTS_DIR = 'checkpoints'
/** A file name a checkpoint may hold: no folders, no dot files. */
export const PLAIN_FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/
export const MANIFEST_FILE = 'manifest.json'
export const CHECKPOINT_FORMAT = 'ringtrain-checkpoint/1'
/** The coordinator's token file in --out (JobConfig.outToken): who sees it shares the folder. */
export const OUT_TOKEN_FILE = '.ringtrain-out'

/** Where the data stands at a checkpoint: enough to continue the epoch exactly. */
export interface DataPosition {
  /** The epoch the next step belongs to (0-based). */
  epoch: number
  /**
   * Samples of this epoch's shuffled order that were consumed before `shardWorldSize` ranks
   * began sharding the rest (0 unless the world changed size mid-epoch).
   */
  startSample: number
  /** The world size that shards this epoch's order from `startSample`. */
  shardWorldSize: number
  /** The per-rank batch size of those steps. */
  batchSize: number
  /** Steps of this epoch already taken since `startSample`: the next step takes batch `batch`. */
  batch: number
}

/** The positions of this epoch's order consumed at `position`: where another world size starts. */
export function consumedSamples(position: DataPosition, length: number): number {
  return Math.min(length, position.startSample + position.batch * position.batchSize * position.shardWorldSize)
}

export interface CheckpointFile {
  name: string
  bytes: number
}

export interface CheckpointManifest {
  format: typeof CHECKPOINT_FORMAT
  ringtrainVersion: string
  jobId: string
  /** Optimizer steps taken: training resumes at this step (0-based). */
  step: number
  position: DataPosition
  seed: number
  worldSize: number
  /** Hash of the model's full weights layout (trainable, then buffers). */
  layoutHash: string
  /** Every weight in `weights.bin` order, for the layout check on resume. */
  weights: { name: string; shape: number[] }[]
  /** The optimizer's name and its state's layout (`iter`, `slot/0`, …). */
  optimizer: { name: string; state: { name: string; shape: number[] }[] }
  /** The learning rate the next step uses (its schedule position is `step`). */
  learningRate: number
  /** Optimizer steps skipped for non-finite gradients before `step` (`--on-nonfinite skip`). */
  skippedSteps?: number
  /** How long training waited at the step boundary for this checkpoint (the in-memory copy), ms. */
  stallMs?: number
  /** Of `stallMs`, the in-memory copy; the rest waited for the previous checkpoint's write. */
  copyMs?: number
  /** The parameter hash of the saved weights (FNV-1a 64 of weights.bin). */
  parameterHash: string
  files: CheckpointFile[]
  createdAt: string
}

/** `step-0000120`: seven digits, so names sort like numbers up to ten million steps. */
export function checkpointDirName(step: number): string {
  return `step-${String(step).padStart(7, '0')}`
}

const DIR_PATTERN = /^step-(\d{7,})$/

export interface FoundCheckpoint {
  dir: string
  manifest: CheckpointManifest
}

/**
 * The complete checkpoints under `outDir/checkpoints`, oldest first. A directory without a
 * readable manifest of this format is skipped (an interrupted write).
 */
export async function listCheckpoints(outDir: string): Promise<FoundCheckpoint[]> {
  const root = join(outDir, CHECKPOINTS_DIR)
  let names: string[]
  try {
    names = await readdir(root)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw error
  }
  const found: FoundCheckpoint[] = []
  for (const name of names.filter((n) => DIR_PATTERN.test(n)).sort()) {
    const dir = join(root, name)
    const manifest = await readManifest(dir).catch(() => undefined)
    if (manifest !== undefined) found.push({ dir, manifest })
  }
  return found.sort((a, b) => a.manifest.step - b.manifest.step)
}

/** The newest complete checkpoint under `outDir`, or undefined. */
export async function newestCheckpoint(outDir: string): Promise<FoundCheckpoint | undefined> {
  return (await listCheckpoints(outDir)).at(-1)
}

/** Reads and checks `dir/manifest.json`; throws a `ConfigError` naming the file and what is wrong. */
export async function readManifest(dir: string): Promise<CheckpointManifest> {
  const path = join(dir, MANIFEST_FILE)
  return parseManifest(path, await readFile(path, 'utf8'))
}

/** Checks the text of a manifest; `path` names it in the ConfigError. */
export function parseManifest(path: string, text: string): CheckpointManifest {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new ConfigError(`${path} is not valid JSON; expected a checkpoint manifest.`, { path })
  }
  const m = value as Partial<CheckpointManifest>
  if (m.format !== CHECKPOINT_FORMAT) throw new ConfigError(`${path} has format ${JSON.stringify(m.format)}; expected ${CHECKPOINT_FORMAT}.`, { path, expected: CHECKPOINT_FORMAT, got: m.format })
  for (const key of ['step', 'seed', 'worldSize'] as const) {
    if (!Number.isInteger(m[key]) || (m[key] as number) < 0) throw new ConfigError(`${path}: ${key} must be a non-negative integer, got ${JSON.stringify(m[key])}.`, { path, field: key })
  }
  const p = m.position
  if (p === undefined || ![p.epoch, p.startSample, p.shardWorldSize, p.batchSize, p.batch].every((x) => Number.isInteger(x) && x >= 0)) {
    throw new ConfigError(`${path}: position must hold non-negative integers epoch, startSample, shardWorldSize, batchSize and batch.`, { path, field: 'position', got: p })
  }
  if (!Array.isArray(m.weights) || !Array.isArray(m.files) || typeof m.optimizer?.name !== 'string' || !Array.isArray(m.optimizer.state)) {
    throw new ConfigError(`${path}: weights, files and optimizer must be present.`, { path })
  }
  // Files are plain names inside the checkpoint directory: a manifest never points elsewhere.
  const bad = m.files.find((f) => typeof f?.name !== 'string' || !PLAIN_FILE_NAME.test(f.name) || !Number.isSafeInteger(f.bytes) || f.bytes < 0)
  if (bad !== undefined) throw new ConfigError(`${path}: files must be plain names in the checkpoint directory with byte counts, got ${JSON.stringify(bad)}.`, { path, field: 'files', got: bad })
  return m as CheckpointManifest
}

/**
 * Keeps the newest `keep` complete checkpoints and removes older ones and step directories
 * without a manifest (interrupted writes); temporary directories (a write that may still be
 * running, in this process or another) only with `removeTemporary`. Returns the removed paths.
 */
export async function pruneCheckpoints(outDir: string, keep: number, options: { removeTemporary?: boolean } = {}): Promise<string[]> {
  const root = join(outDir, CHECKPOINTS_DIR)
  const complete = await listCheckpoints(outDir)
  const keepDirs = new Set(complete.slice(Math.max(0, complete.length - keep)).map((c) => c.dir))
  const removed: string[] = []
  let names: string[]
  try {
    names = await readdir(root)
  } catch {
    return removed
  }
  for (const name of names) {
    const path = join(root, name)
    // Temporary directories, and step directories whose manifest is not written yet, may be a
    // write in progress (in this process or another): only removed when asked (at a start).
    if (keepDirs.has(path) || (!options.removeTemporary && (name.startsWith('.') || !complete.some((c) => c.dir === path)))) continue
    await rm(path, { recursive: true, force: true })
    removed.push(path)
  }
  return removed
}
