/**
 * The coordinator's output files in `outDir` (see docs/design.md, "Output files and write
 * errors"):
 * - metrics.jsonl: one JSON line per step, in the order steps complete. Lines are written one
 *   at a time, in order; a line that cannot be written whole (ENOSPC, EROFS, EIO, …) is cut
 *   back off the file and reported once through `onError` as an `OutputWriteError`, and
 *   nothing is written after it: the file holds whole lines only, and the job stops.
 * - summary.json: written at the end through a temp file, fsync and rename, so a reader sees
 *   the previous summary or the new one, never half of one. It carries the jobId and the
 *   run's `startedAt`, so a reader can tell whose it is.
 *
 * A run never removes the previous run's files before its own replacement is committed: an
 * old summary.json stays until this run's summary replaces it, and an old metrics.jsonl is
 * moved to metrics.previous.jsonl (replacing the one before) rather than truncated.
 */
import { open, mkdir, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { OutputWriteError, outputWriteError, syncDirectory, writeFileSynced } from '@ringtrain/core'
import type { JobSummary, MetricsLine, StallReport } from './rendezvous/types.js'

export interface JobFilesOptions {
  /** When the run started (ISO 8601, UTC), written into summary.json beside the jobId; now by default. */
  startedAt?: string
  /** Called once, with the first failed metrics write; later lines are not written. */
  onError?: (error: OutputWriteError) => void
}

export class JobFiles {
  /** The failed write that stopped metrics.jsonl, if one did. */
  private failure: OutputWriteError | undefined
  /** Bytes of whole lines in metrics.jsonl: where the next line goes, and where a failed one is cut back to. */
  private committedBytes = 0
  /** The write queue: each line waits for the one before. */
  private pending: Promise<void> = Promise.resolve()
  private closed: Promise<void> | undefined

  private constructor(
    readonly metricsPath: string,
    readonly summaryPath: string,
    readonly startedAt: string,
    private readonly metrics: FileHandle,
    private readonly onError: (error: OutputWriteError) => void,
    /** The latest stall reports (stall.ts), rewritten at each: a failed job has no summary.json, and a hung one none yet. */
    readonly stallReportsPath: string,
  ) {}

  private stallWrites: Promise<void> = Promise.resolve()

  /** Replaces stall-reports.json with `reports` (temp file + rename); reports written in quick succession land in order. */
  writeStallReports(reports: StallReport[]): Promise<void> {
    this.stallWrites = this.stallWrites.catch(() => undefined).then(async () => {
      const temporary = `${this.stallReportsPath}.${process.pid}.tmp`
      try {
        await writeFile(temporary, `${JSON.stringify(reports, null, 2)}\n`)
        await rename(temporary, this.stallReportsPath)
      } catch (error) {
        await rm(temporary, { force: true }).catch(() => {})
        throw asOutputError(error, this.stallReportsPath, 'the stall reports')
      }
    })
    return this.stallWrites
  }

  /**
   * Creates `outDir` and starts this run's metrics.jsonl. A metrics.jsonl of an earlier run is
   * moved to metrics.previous.jsonl; its summary.json is left in place until this run writes
   * its own. Throws an `OutputWriteError` naming the path and errno code when the folder or
   * file cannot be made (full, read-only, not ours).
   */
  static async open(outDir: string, options: JobFilesOptions = {}): Promise<JobFiles> {
    const metricsPath = join(outDir, 'metrics.jsonl')
    const previousPath = join(outDir, 'metrics.previous.jsonl')
    try {
      await mkdir(outDir, { recursive: true })
    } catch (error) {
      throw asOutputError(error, outDir, 'the output folder')
    }
    try {
      if (await exists(metricsPath)) await rename(metricsPath, previousPath)
    } catch (error) {
      throw asOutputError(error, previousPath, "the previous run's metrics (moved from metrics.jsonl)")
    }
    let handle: FileHandle
    try {
      handle = await open(metricsPath, 'wx')
    } catch (error) {
      throw asOutputError(error, metricsPath, 'metrics')
    }
    const startedAt = options.startedAt ?? new Date().toISOString()
    return new JobFiles(metricsPath, join(outDir, 'summary.json'), startedAt, handle, options.onError ?? (() => {}), join(outDir, 'stall-reports.json'))
  }

  /** The first failed write of metrics.jsonl, once it happened. */
  get metricsFailure(): OutputWriteError | undefined {
    return this.failure
  }

  /** Queues one line; a failure is reported through `onError` (once) and by `closeMetrics`. Lines after `closeMetrics` are dropped. */
  writeMetricsLine(line: MetricsLine): void {
    if (this.closed !== undefined) return
    const bytes = Buffer.from(`${JSON.stringify(line)}\n`)
    this.pending = this.pending.then(() => this.writeWhole(bytes))
  }

  private async writeWhole(bytes: Buffer): Promise<void> {
    if (this.failure !== undefined) return
    try {
      // A short write (the disk filled mid-line) is followed by one that fails: loop to find out.
      for (let offset = 0; offset < bytes.length;) {
        const { bytesWritten } = await this.metrics.write(bytes, offset, bytes.length - offset, this.committedBytes + offset)
        offset += bytesWritten
      }
      this.committedBytes += bytes.length
    } catch (error) {
      await this.fail(error, `step ${describeStep(bytes)} of the metrics`)
    }
  }

  private async fail(error: unknown, what: string): Promise<void> {
    if (this.failure !== undefined) return
    // Cut the half line back off, so metrics.jsonl holds whole lines (best effort: on a
    // read-only file system this fails too, and the message says so).
    const cut = await this.metrics.truncate(this.committedBytes).then(() => true, () => false)
    const wrapped = asOutputError(error, this.metricsPath, what)
    const tail = cut
      ? ` ${this.metricsPath} keeps the ${this.committedBytes} bytes of whole lines written before it.`
      : ` The part of the line that was written could not be cut off: the last line of ${this.metricsPath} may be incomplete.`
    this.failure = new OutputWriteError(`${wrapped.message}${tail}`, { ...wrapped.context, committedBytes: this.committedBytes }, { cause: wrapped.cause })
    this.onError(this.failure)
  }

  /**
   * Waits for every queued line, then flushes (fsync) and closes metrics.jsonl. Rejects with the
   * `OutputWriteError` of the first failed write, fsync or close.
   */
  closeMetrics(): Promise<void> {
    this.closed ??= (async () => {
      await this.stallWrites.catch(() => undefined)
      await this.pending
      if (this.failure === undefined) {
        try {
          await this.metrics.sync()
        } catch (error) {
          await this.fail(error, 'the metrics (fsync)')
        }
      }
      try {
        await this.metrics.close()
      } catch (error) {
        if (this.failure === undefined) await this.fail(error, 'the metrics (close)')
      }
      if (this.failure !== undefined) throw this.failure
    })()
    return this.closed
  }

  /**
   * Replaces summary.json atomically: temp file, fsync, rename, fsync of the folder. On failure
   * the temp file is removed, the previous summary.json (if any) stays, and an
   * `OutputWriteError` naming summary.json and the errno code is thrown.
   */
  async writeSummary(summary: JobSummary): Promise<void> {
    const temporary = `${this.summaryPath}.${process.pid}.tmp`
    const { jobId, ...rest } = summary
    const text = `${JSON.stringify({ jobId, startedAt: this.startedAt, ...rest }, null, 2)}\n`
    try {
      await writeFileSynced(temporary, new TextEncoder().encode(text))
      await rename(temporary, this.summaryPath)
    } catch (error) {
      await rm(temporary, { force: true }).catch(() => {})
      throw asOutputError(error, this.summaryPath, 'the job summary')
    }
    // Best effort: some file systems refuse to open or fsync a folder.
    await syncDirectory(join(this.summaryPath, '..')).catch(() => {})
  }
}

function asOutputError(error: unknown, path: string, what: string): OutputWriteError {
  const wrapped = outputWriteError(error, path, what)
  if (wrapped instanceof OutputWriteError) return wrapped
  const message = wrapped instanceof Error ? wrapped.message : String(wrapped)
  return new OutputWriteError(`could not write ${what} to ${path}: ${message}`, { path, expected: 'a successful write', got: message }, { cause: wrapped })
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, (error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return false
    throw error
  })
}

function describeStep(bytes: Buffer): string {
  const match = /^\{"step":(\d+)/.exec(bytes.subarray(0, 32).toString('utf8'))
  return match?.[1] ?? '?'
}
