/**
 * The coordinator's output files in `outDir`: metrics.jsonl (one JSON line per step, in
 * the order steps complete), summary.json and stall-reports.json, both written atomically
 * (temp file + rename) so a reader never sees half of one.
 */
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { JobSummary, MetricsLine, StallReport } from './rendezvous/types.js'

export class JobFiles {
  private constructor(
    readonly metricsPath: string,
    readonly summaryPath: string,
    private readonly metrics: WriteStream,
    /** The latest stall reports (stall.ts), rewritten at each: a failed job has no summary.json, and a hung one none yet. */
    readonly stallReportsPath: string,
  ) {}

  /**
   * Creates `outDir` and starts a fresh metrics.jsonl (an old one is replaced). A summary.json
   * left by an earlier run is removed, so it never stands beside this run's metrics; the
   * model of an earlier run stays until this run saves its own.
   */
  static async open(outDir: string): Promise<JobFiles> {
    await mkdir(outDir, { recursive: true })
    await rm(join(outDir, 'summary.json'), { force: true })
    await rm(join(outDir, 'stall-reports.json'), { force: true })
    const metricsPath = join(outDir, 'metrics.jsonl')
    const metrics = createWriteStream(metricsPath, { flags: 'w' })
    await new Promise<void>((resolve, reject) => metrics.once('open', () => resolve()).once('error', reject))
    return new JobFiles(metricsPath, join(outDir, 'summary.json'), metrics, join(outDir, 'stall-reports.json'))
  }

  writeMetricsLine(line: MetricsLine): void {
    this.metrics.write(`${JSON.stringify(line)}\n`)
  }

  async writeSummary(summary: JobSummary): Promise<void> {
    await writeAtomically(this.summaryPath, summary)
  }

  /** Replaces stall-reports.json with `reports`; reports written in quick succession land in order. */
  writeStallReports(reports: StallReport[]): Promise<void> {
    this.stallWrites = this.stallWrites.catch(() => undefined).then(() => writeAtomically(this.stallReportsPath, reports))
    return this.stallWrites
  }

  private stallWrites: Promise<void> = Promise.resolve()

  /** Flushes and closes metrics.jsonl, once stall-reports.json is written. */
  async close(): Promise<void> {
    await this.stallWrites.catch(() => undefined)
    await new Promise<void>((resolve) => this.metrics.end(() => resolve()))
  }
}

async function writeAtomically(path: string, value: unknown): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`
  await writeFile(temporary, `${JSON.stringify(value, null, 2)}\n`)
  await rename(temporary, path)
}
