/**
 * `ringtrain bench scaling TASK --workers 1,2 --steps 200 --json`: trains TASK with each
 * worker count (one process per core) for a fixed number of steps and prints the median
 * samples/s after warm-up: `{"workers":N,"samplesPerSecond":…,"computeMs":…,"allReduceMs":…}` per N
 * (the two times are the per-step medians of the slowest rank), then the speed-up.
 *
 * `--testbed-hosts H --link-mbit R`: every job runs across test-bed hosts (testbed.ts), one
 * worker per host and the coordinator beside worker 0 (scaling-testbed.ts), over tcp links of
 * R Mbit/s, with a job key as cross-host jobs run (`--secure off`: none). Each line then
 * also carries `linkMbit` and `testbedHosts`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError } from '@ringtrain/core'
import { jobConfigFrom } from '../commands/job-options.js'
import { launch } from '../launch/launch.js'
import { parseList } from './parse-list.js'
import { runJobOnTestbed, type BedJob } from './scaling-testbed.js'
import { startTestbed, testbedOptions, type Testbed } from './testbed.js'

export async function run(argv: Record<string, unknown>): Promise<void> {
  const task = argv['task']
  if (typeof task !== 'string') throw new ConfigError('ringtrain bench scaling needs a TASK, e.g. `ringtrain bench scaling examples/mnist-mlp`.')
  const steps = Number(argv['steps'])
  if (!Number.isInteger(steps) || steps < 20) throw new ConfigError(`--steps must be an integer ≥ 20 (the first 10% are warm-up); got ${String(argv['steps'])}.`)
  const workerCounts = parseList(String(argv['workers']), '--workers', (text) => Number(text))
  const json = Boolean(argv['json'])
  const secure = String(argv['secure'] ?? 'on')
  if (secure !== 'on' && secure !== 'off') throw new ConfigError(`--secure must be on or off; got ${secure}.`, { flag: 'secure', got: secure })
  const bedOptions = testbedOptions(argv)
  const tooMany = bedOptions && workerCounts.find((n) => n > bedOptions.hosts)
  if (bedOptions && tooMany) throw new ConfigError(`--workers ${tooMany} needs as many test-bed hosts (one worker per host); --testbed-hosts is ${bedOptions.hosts}.`, { flag: 'workers', expected: `≤ ${bedOptions.hosts}`, got: tooMany })
  const backend = String(argv['backend'] ?? 'auto')
  const results: { workers: number; samplesPerSecond: number }[] = []
  const bed = bedOptions ? startTestbed(bedOptions.hosts, bedOptions.linkMbit) : undefined
  try {
    for (const workers of workerCounts) {
      const figure = await measure({ task, workers, steps, backend, secure: secure === 'on' }, bed)
      results.push(figure)
      const onBed = bed ? { linkMbit: bed.linkMbit, testbedHosts: bed.hosts, security: secure === 'on' ? 'encrypted' : 'off' } : {}
      if (json) console.log(JSON.stringify({ ...figure, ...onBed }))
      else console.log(`${workers} worker(s)${bed ? ` on ${workers} test-bed host(s), links at ${bed.linkMbit} Mbit/s` : ''}: ${figure.samplesPerSecond.toFixed(1)} samples/s, compute ${figure.computeMs} ms + all-reduce ${figure.allReduceMs} ms per step (medians of steps ${Math.ceil(steps / 10) + 1}..${steps})`)
    }
  } finally {
    bed?.down()
  }
  const base = results[0]
  if (!json && base) for (const r of results.slice(1)) console.log(`${r.workers} workers / ${base.workers}: ${(r.samplesPerSecond / base.samplesPerSecond).toFixed(2)}×`)
}

/** Runs one job, locally or on the bed, and reads its per-step medians from metrics.jsonl. */
async function measure(job: Omit<BedJob, 'out'>, bed: Testbed | undefined): Promise<{ workers: number; samplesPerSecond: number; computeMs: number; allReduceMs: number }> {
  const { task, workers, steps } = job
  const out = mkdtempSync(join(tmpdir(), 'ringtrain-scaling-'))
  try {
    if (bed) {
      await runJobOnTestbed(bed, { ...job, out })
    } else {
      const config = { ...jobConfigFrom({ task, workers, seed: 42, backend: job.backend as never, out, 'heartbeat-interval-ms': 1000, 'heartbeat-max-missed': 30, 'step-timeout-ms': 120_000, 'join-timeout-ms': 120_000, epochs: 1000 }), maxSteps: steps }
      const exitCode = await launch(config, { gpusPerNode: 0, quiet: true, logWorkers: false })
      if (exitCode !== 0) throw new ConfigError(`the ${workers}-worker run of ${task} failed (exit code ${exitCode}); run it with \`ringtrain launch\` to see why.`)
    }
    type Line = { step: number; samplesPerSecond: number; computeMs: number; allReduceMs: number }
    const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line)
    const timed = lines.filter((l) => l.step > Math.ceil(steps / 10))
    const median = (key: keyof Line) => {
      const sorted = timed.map((l) => l[key]).sort((a, b) => a - b)
      return Math.round((sorted[Math.floor(sorted.length / 2)] ?? Number.NaN) * 100) / 100
    }
    // Per step, slowest rank: where the time goes when the speed-up falls short.
    return { workers, samplesPerSecond: median('samplesPerSecond'), computeMs: median('computeMs'), allReduceMs: median('allReduceMs') }
  } finally {
    rmSync(out, { recursive: true, force: true })
  }
}
