/**
 * Durable, atomic placement of output directories, shared by the worker (which writes its
 * own checkpoints and model when the coordinator's --out is on its machine) and the
 * coordinator (which writes what rank 0 streams to it otherwise).
 */
import { mkdir, mkdtemp, open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { CHECKPOINTS_DIR, MANIFEST_FILE, checkpointDirName } from './manifest.js'

/** Writes `bytes` to `path` and fsyncs the file before it resolves. */
export async function writeFileSynced(path: string, bytes: Uint8Array): Promise<void> {
  const file = await open(path, 'w')
  try {
    await file.writeFile(bytes)
    await file.sync()
  } finally {
    await file.close()
  }
}

/** fsyncs a directory, so a rename inside it survives a crash (best effort where the file system refuses). */
export async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, 'r')
  try {
    await dir.sync().catch(() => undefined)
  } finally {
    await dir.close()
  }
}

/** A fresh temporary directory beside `target` (same file system, so a rename can place it). */
export async function temporarySibling(target: string): Promise<string> {
  await mkdir(dirname(target), { recursive: true })
  return mkdtemp(join(dirname(target), `.${basename(target)}.tmp-`))
}

/** The temporary directory for the checkpoint of `step` under `outDir/checkpoints`. */
export function temporaryCheckpointDir(outDir: string, step: number): Promise<string> {
  return temporarySibling(join(outDir, CHECKPOINTS_DIR, checkpointDirName(step)))
}

/**
 * Commits a checkpoint whose files are written and fsynced in `temp`: the directory is
 * renamed to `outDir/checkpoints/step-NNNNNNN` (replacing one of the same step), its parent
 * fsynced, then `manifestText` is written as manifest.json (temporary name, fsync, rename)
 * and the directory fsynced. Returns the directory.
 */
export async function commitCheckpointDir(outDir: string, step: number, temp: string, manifestText: string): Promise<string> {
  const root = join(outDir, CHECKPOINTS_DIR)
  const final = join(root, checkpointDirName(step))
  await rm(final, { recursive: true, force: true })
  await rename(temp, final)
  await syncDirectory(root)
  const manifest = join(final, MANIFEST_FILE)
  await writeFileSynced(`${manifest}.tmp`, new TextEncoder().encode(manifestText))
  await rename(`${manifest}.tmp`, manifest)
  await syncDirectory(final)
  return final
}

/** Puts the directory `temp` in the place of `target` (which may exist): a reader sees the old or the new one, never half. */
export async function swapDirectory(temp: string, target: string): Promise<void> {
  try {
    await rename(temp, target)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EISDIR' && code !== 'ENOTDIR') throw error
    const aside = `${temp}.previous`
    await rename(target, aside)
    await rename(temp, target)
    await rm(aside, { recursive: true, force: true })
  }
  await syncDirectory(dirname(target))
}
