/**
 * Where rank 0's checkpoints and model go: into the job's --out on this machine when it is
 * the coordinator's folder (the coordinator's `.ringtrain-out` token is there), else
 * streamed to the coordinator over the control connection (coordinator/src/output-sink.ts),
 * so a multi-host user finds them where the job was launched.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { OUT_TOKEN_FILE, type JobConfig } from '@ringtrain/core'
import type { CoordinatorClient } from '../control/coordinator-client.js'
import { checkpointContents, manifestText, type CheckpointSnapshot } from './checkpoint-files.js'

/** True when this machine sees the coordinator's --out (its token file holds this run's token). */
export async function sharesOutDir(config: JobConfig): Promise<boolean> {
  if (config.outToken === undefined) return true
  const found = await readFile(join(config.outDir, OUT_TOKEN_FILE), 'utf8').catch(() => '')
  return found.trim() === config.outToken
}

/** A Checkpointer commit that streams the snapshot to the coordinator. */
export function streamCheckpoints(client: CoordinatorClient, timeoutMs: number): (state: CheckpointSnapshot) => Promise<string> {
  return (state) => {
    const { files, manifest } = checkpointContents(state)
    return client.streamOutput('checkpoint', state.step, files, timeoutMs, manifestText(manifest))
  }
}
