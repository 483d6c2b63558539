/**
 * A log that says each kind of trouble once per interval. Hostile or broken peers can send
 * thousands of bad messages a second; the first of each (key) is logged at once, the rest
 * are counted, and the count rides on the next line for that key once the interval passed
 * ("… (and 4311 more like it in the last 10 s)"). `flush()` writes the counts still held.
 * At most `maxKeys` keys are tracked (oldest evicted first), so memory stays bounded when
 * the senders are many.
 */
export interface RateLimitedLogOptions {
  intervalMs?: number
  maxKeys?: number
  now?: () => number
}

interface Entry { lastLoggedAt: number; suppressed: number; line: string }

export class RateLimitedLog {
  private readonly entries = new Map<string, Entry>()
  private readonly intervalMs: number
  private readonly maxKeys: number
  private readonly now: () => number

  constructor(private readonly write: (line: string) => void, options: RateLimitedLogOptions = {}) {
    this.intervalMs = options.intervalMs ?? 10_000
    this.maxKeys = options.maxKeys ?? 1024
    this.now = options.now ?? Date.now
  }

  /** Logs `line` unless a line with this `key` was logged less than an interval ago. */
  note(key: string, line: string): void {
    const now = this.now()
    const entry = this.entries.get(key)
    if (entry !== undefined && now - entry.lastLoggedAt < this.intervalMs) {
      entry.suppressed++
      entry.line = line
      return
    }
    this.entries.delete(key)
    if (this.entries.size >= this.maxKeys) this.evictOldest()
    this.entries.set(key, { lastLoggedAt: now, suppressed: 0, line })
    this.write(entry !== undefined && entry.suppressed > 0 ? `${line} (and ${entry.suppressed} more like it in the last ${this.seconds(now - entry.lastLoggedAt)} s)` : line)
  }

  /** Writes the counts of lines held back, e.g. when the socket closes. */
  flush(): void {
    const now = this.now()
    for (const entry of this.entries.values()) {
      if (entry.suppressed > 0) this.write(`${entry.line} (${entry.suppressed} more like it in the last ${this.seconds(now - entry.lastLoggedAt)} s)`)
    }
    this.entries.clear()
  }

  private evictOldest(): void {
    const [key, entry] = this.entries.entries().next().value as [string, Entry]
    this.entries.delete(key)
    if (entry.suppressed > 0) this.write(`${entry.line} (${entry.suppressed} more like it)`)
  }

  private seconds(ms: number): string {
    return (Math.max(ms, 0) / 1000).toFixed(ms < 10_000 ? 1 : 0)
  }
}
