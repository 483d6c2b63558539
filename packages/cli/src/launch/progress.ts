/**
 * The launcher's progress display: a live bar on a TTY (epoch, step, samples/s, loss, ETA),
 * plain lines otherwise (CI logs, pipes), at most one every `plainIntervalMs`.
 */
import type { ProgressSample } from '@ringtrain/coordinator'

export class ProgressBar {
  private startedAt = Date.now()
  private lastPlainAt = 0
  private drawn = false

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly plainIntervalMs = 2_000,
  ) {}

  get isTTY(): boolean {
    return Boolean(this.stream.isTTY)
  }

  update(sample: ProgressSample): void {
    const line = formatProgress(sample, Date.now() - this.startedAt)
    if (this.isTTY) {
      const width = this.stream.columns ?? 100
      this.stream.write(`\r${line.slice(0, width - 1).padEnd(width - 1)}`)
      this.drawn = true
      return
    }
    const now = Date.now()
    if (now - this.lastPlainAt >= this.plainIntervalMs || sample.stepsDone === sample.totalSteps) {
      this.lastPlainAt = now
      this.stream.write(`${line}\n`)
    }
  }

  /** Prints a log line above the bar without tearing it. */
  log(text: string): void {
    if (this.isTTY && this.drawn) this.stream.write('\r\x1b[2K')
    this.stream.write(text.endsWith('\n') ? text : `${text}\n`)
  }

  finish(): void {
    if (this.isTTY && this.drawn) this.stream.write('\n')
    this.drawn = false
  }
}

export function formatProgress(sample: ProgressSample, elapsedMs: number): string {
  const fraction = sample.totalSteps > 0 ? Math.min(1, sample.stepsDone / sample.totalSteps) : 0
  const width = 24
  const filled = Math.round(fraction * width)
  const bar = '█'.repeat(filled) + '░'.repeat(width - filled)
  const etaMs = fraction > 0 ? (elapsedMs / fraction) * (1 - fraction) : Number.NaN
  return (
    `epoch ${sample.epoch + 1}/${sample.epochs} ${sample.stepsDone}/${sample.totalSteps} steps ${bar} ` +
    `${Math.round(sample.samplesPerSecond)} samples/s loss ${sample.loss.toFixed(4)} ETA ${formatDuration(etaMs)}`
  )
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '--'
  const seconds = Math.round(ms / 1000)
  const minutes = Math.floor(seconds / 60)
  return minutes > 0 ? `${minutes}m${String(seconds % 60).padStart(2, '0')}s` : `${seconds}s`
}
