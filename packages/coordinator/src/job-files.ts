/**
 * The coordinator's output files in `outDir`: metrics.jsonl (one JSON line per step, in
 * the order steps complete) and summary.json, written atomically (temp file + rename) so a
 * reader never sees half a summary.
 */
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { JobSummary, MetricsLine } from './rendezvous/types.js'

export class JobFiles {
  private constructor(
    readonly metricsPath: string,
    readonly summaryPath: string,
    private readonly metrics: WriteStream,
  ) {}

  /**
   * Creates `outDir` and starts a fresh metrics.jsonl (an old one is replaced). A summary.json
   * left by an earlier run is removed, so it never stands beside this run's metrics; the
   * model of an earlier run stays until this run saves its own.
   */
  static async open(outDir: string): Promise<JobFiles> {
    await mkdir(outDir, { recursive: true })
    await rm(join(outDir, 'summary.json'), { force: true })
    const metricsPath = join(outDir, 'metrics.jsonl')
    const metrics = createWriteStream(metricsPath, { flags: 'w' })
    await new Promise<void>((resolve, reject) => metrics.once('open', () => resolve()).once('error', reject))
    return new JobFiles(metricsPath, join(outDir, 'summary.json'), metrics)
  }

  writeMetricsLine(line: MetricsLine): void {
    this.metrics.write(`${JSON.stringify(line)}\n`)
  }

  async writeSummary(summary: JobSummary): Promise<void> {
    const temporary = `${this.summaryPath}.${process.pid}.tmp`
    await writeFile(temporary, `${JSON.stringify(summary, null, 2)}\n`)
    await rename(temporary, this.summaryPath)
  }

  /** Flushes and closes metrics.jsonl. */
  close(): Promise<void> {
    return new Promise((resolve) => this.metrics.end(() => resolve()))
  }
}
