/**
 * `ringtrain bench scaling TASK --workers 1,2 --steps 200 --json`: trains TASK with each
 * worker count (one process per core) for a fixed number of steps and prints the median
 * samples/s after warm-up: `{"workers":N,"samplesPerSecond":…,"computeMs":…,"allReduceMs":…}` per N
 * (the two times are the per-step medians of the slowest rank), then the speed-up.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError } from '@ringtrain/core'
import { jobConfigFrom } from '../commands/job-options.js'
import { launch } from '../launch/launch.js'
import { parseList } from './parse-list.js'

export async function run(argv: Record<string, unknown>): Promise<void> {
  const task = argv['task']
  if (typeof task !== 'string') throw new ConfigError('ringtrain bench scaling needs a TASK, e.g. `ringtrain bench scaling examples/mnist-mlp`.')
  const steps = Number(argv['steps'])
  if (!Number.isInteger(steps) || steps < 20) throw new ConfigError(`--steps must be an integer ≥ 20 (the first 10% are warm-up); got ${String(argv['steps'])}.`)
  const workerCounts = parseList(String(argv['workers']), '--workers', (text) => Number(text))
  const json = Boolean(argv['json'])
  const results: { workers: number; samplesPerSecond: number }[] = []
  for (const workers of workerCounts) {
    const out = mkdtempSync(join(tmpdir(), 'ringtrain-scaling-'))
    try {
      const config = { ...jobConfigFrom({ task, workers, seed: 42, backend: (argv['backend'] as never) ?? 'auto', out, 'heartbeat-interval-ms': 1000, 'heartbeat-max-missed': 30, 'step-timeout-ms': 120_000, 'join-timeout-ms': 120_000, epochs: 1000 }), maxSteps: steps }
      const exitCode = await launch(config, { gpusPerNode: 0, quiet: true, logWorkers: false })
      if (exitCode !== 0) throw new ConfigError(`the ${workers}-worker run of ${task} failed (exit code ${exitCode}); run it with \`ringtrain launch\` to see why.`)
      type Line = { step: number; samplesPerSecond: number; computeMs: number; allReduceMs: number }
      const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line)
      const timed = lines.filter((l) => l.step > Math.ceil(steps / 10))
      const median = (key: keyof Line) => {
        const sorted = timed.map((l) => l[key]).sort((a, b) => a - b)
        return Math.round((sorted[Math.floor(sorted.length / 2)] ?? Number.NaN) * 100) / 100
      }
      const samplesPerSecond = median('samplesPerSecond')
      results.push({ workers, samplesPerSecond })
      // Per step, slowest rank: where the time goes when the speed-up falls short.
      const computeMs = median('computeMs')
      const allReduceMs = median('allReduceMs')
      if (json) console.log(JSON.stringify({ workers, samplesPerSecond, computeMs, allReduceMs }))
      else console.log(`${workers} worker(s): ${samplesPerSecond.toFixed(1)} samples/s, compute ${computeMs} ms + all-reduce ${allReduceMs} ms per step (medians of steps ${Math.ceil(steps / 10) + 1}..${steps})`)
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  }
  const base = results[0]
  if (!json && base) for (const r of results.slice(1)) console.log(`${r.workers} workers / ${base.workers}: ${(r.samplesPerSecond / base.samplesPerSecond).toFixed(2)}×`)
}
