/**
 * Rank 0's checkpoints: `take()` copies the state at a step boundary (the only time training
 * waits) and writes it in the background; one write at a time, so a slow disk makes the next
 * `take()` wait rather than pile up snapshots in memory. A failed write is reported at the
 * next `take()` or `flush()` (an `OutputWriteError` naming the path); older checkpoints are
 * only pruned after a newer one committed, so the last good one always stays.
 */
import { OutputWriteError, pruneCheckpoints } from '@ringtrain/core'
import { writeCheckpoint, type CheckpointSnapshot } from './checkpoint-files.js'

export interface CommittedCheckpoint {
  step: number
  dir: string
}

export class Checkpointer {
  private inFlight: Promise<void> | undefined
  private failure: Error | undefined
  /** The newest checkpoint this process committed. */
  lastCommitted: CommittedCheckpoint | undefined
  /** Milliseconds the last `take()` held training (snapshot, and waiting for the previous write). */
  lastStallMs = 0

  /**
   * `commit` writes a snapshot where the job's outputs go and returns the directory: by
   * default into `outDir` on this machine; a rank 0 that does not share the coordinator's
   * --out passes one that streams it there (which also prunes there).
   */
  constructor(
    private readonly outDir: string,
    private readonly keep: number,
    private readonly log: (line: string) => void,
    private readonly commit?: (state: CheckpointSnapshot) => Promise<string>,
  ) {}

  /** Removes what interrupted writes left under `outDir/checkpoints` (before the first write). */
  async removeIncomplete(): Promise<void> {
    if (this.commit) return
    const removed = await pruneCheckpoints(this.outDir, Number.MAX_SAFE_INTEGER, { removeTemporary: true })
    for (const path of removed) this.log(`removed ${path}: an interrupted checkpoint write (no manifest).`)
  }

  /** Waits for the write in flight (if any), takes `snapshot()` and starts writing it. */
  async take(snapshot: () => Promise<CheckpointSnapshot>): Promise<void> {
    const started = performance.now()
    await this.flush()
    const copying = performance.now()
    const state = await snapshot()
    this.lastStallMs = performance.now() - started
    state.stallMs = this.lastStallMs
    state.copyMs = performance.now() - copying
    this.inFlight = this.write(state).finally(() => { this.inFlight = undefined })
  }

  /** Resolves when no write is in flight; rejects with the error of a failed write. */
  async flush(): Promise<void> {
    await this.inFlight
    if (this.failure !== undefined) {
      const failure = this.failure
      this.failure = undefined
      throw failure
    }
  }

  private async write(state: CheckpointSnapshot): Promise<void> {
    const started = performance.now()
    try {
      const dir = this.commit ? await this.commit(state) : await writeCheckpoint(this.outDir, state)
      this.lastCommitted = { step: state.step, dir }
      const removed = this.commit ? [] : await pruneCheckpoints(this.outDir, this.keep)
      const seconds = ((performance.now() - started) / 1000).toFixed(2)
      this.log(`committed checkpoint ${dir} (step ${state.step}, ${(state.weights.byteLength / 1e6).toFixed(1)} MB of weights) in ${seconds} s${removed.length > 0 ? `; removed ${removed.length} older` : ''}.`)
    } catch (error) {
      // Never a collective's error (a streamed write that timed out, say): a failed checkpoint stops the job, it does not end a round.
      this.failure = error instanceof OutputWriteError ? error : new OutputWriteError(`could not commit the checkpoint of step ${state.step}: ${(error as Error).message}`, { step: state.step, got: (error as { code?: string }).code ?? 'an error' }, { cause: error })
    }
  }
}
