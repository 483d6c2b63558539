/**
 * `ringtrain bench recovery --json`: what recovery costs while training.
 *
 * Checkpoint stall: a 2-worker job checkpoints every K steps (rank 0 copies its state at the
 * step boundary and writes it in the background); the step after each checkpoint is slowed
 * by the copy. stallMs = median over checkpoints of (that step's time − the median step time),
 * where a step's time is its slowest rank's compute + all-reduce (the other rank waits for
 * rank 0 inside the all-reduce). Target: stall ≤ 2 steps of the 25 M-parameter MLP.
 *
 * snapshotMs is what rank 0 measured itself at the boundary (manifest `stallMs`): the copy
 * (`copyMs`) plus any wait for the previous checkpoint's background write to finish.
 *
 * Kill -9 → next step: see `killToNextStep` below. `bench recovery kill` runs only that case;
 * `bench recovery mnist-cnn` or `mlp-25m` only that stall case.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigError } from '@ringtrain/core'
import { jobConfigFrom } from '../commands/job-options.js'
import { launch } from '../launch/launch.js'

interface Case { name: string; task: string; steps: number; every: number }

const CASES: Case[] = [
  { name: 'mnist-cnn', task: fileURLToPath(new URL('../../../../examples/mnist-cnn/index.ts', import.meta.url)), steps: 120, every: 20 },
  { name: 'mlp-25m', task: fileURLToPath(new URL('./tasks/wide-mlp.ts', import.meta.url)), steps: 60, every: 12 },
]

type Line = { step: number; computeMs: number; allReduceMs: number }

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}
const round = (x: number) => Math.round(x * 10) / 10

export async function run(argv: Record<string, unknown>): Promise<void> {
  const json = Boolean(argv['json'])
  const only = typeof argv['task'] === 'string' ? String(argv['task']) : undefined
  if (only === undefined || only === 'kill') {
    const elastic = await killToNextStep()
    const result = { case: 'kill -9 of 1 of 3 workers (mnist-mlp, --min-workers 2, defaults)', ...elastic, killToNextStepMs: round(elastic.killToNextStepMs) }
    if (json) console.log(JSON.stringify(result))
    else console.log(`${result.case}: ${result.killToNextStepMs} ms from the kill to the next completed step (${result.rounds} rounds, ${result.steps} steps)`)
    if (only === 'kill') return
  }
  for (const c of CASES.filter((c) => only === undefined || c.name === only)) {
    const out = mkdtempSync(join(tmpdir(), 'ringtrain-bench-recovery-'))
    try {
      const config = {
        ...jobConfigFrom({ task: c.task, workers: 2, seed: 42, backend: (argv['backend'] as never) ?? 'auto', out, 'heartbeat-interval-ms': 1000, 'heartbeat-max-missed': 30, 'step-timeout-ms': 300_000, 'join-timeout-ms': 120_000 }),
        maxSteps: c.steps, checkpointEvery: c.every, keepCheckpoints: 1000,
      }
      const exitCode = await launch(config, { gpusPerNode: 0, quiet: true, logWorkers: false })
      if (exitCode !== 0) throw new ConfigError(`the ${c.name} run failed (exit code ${exitCode}); run it with \`ringtrain launch\` to see why.`)
      const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line)
      const stepMs = (l: Line) => l.computeMs + l.allReduceMs
      // Step s+1 pays for the checkpoint taken after step s (s + 1 a multiple of `every`); skip the first as warm-up.
      const after = new Set(Array.from({ length: Math.floor(c.steps / c.every) }, (_, i) => (i + 1) * c.every).filter((s) => s > c.every && s < c.steps))
      const warm = lines.filter((l) => l.step >= c.every)
      const normal = median(warm.filter((l) => !after.has(l.step)).map(stepMs))
      const stalls = warm.filter((l) => after.has(l.step)).map((l) => stepMs(l) - normal)
      const stallMs = median(stalls)
      // What rank 0 measured itself: the in-memory copy (all but the first, which also builds model.json).
      const manifests = readdirSync(join(out, 'checkpoints')).filter((n) => n.startsWith('step-')).sort()
        .map((n) => JSON.parse(readFileSync(join(out, 'checkpoints', n, 'manifest.json'), 'utf8')) as { step: number; stallMs?: number; copyMs?: number; weights: { shape: number[] }[] })
      const parameters = manifests[0]!.weights.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0)
      const snapshotMs = median(manifests.slice(1).map((m) => m.stallMs ?? Number.NaN))
      const copyMs = median(manifests.slice(1).map((m) => m.copyMs ?? Number.NaN))
      const result = {
        model: c.name, parameters, stepMs: round(normal), stallMs: round(stallMs), stallInSteps: round(stallMs / normal), snapshotMs: round(snapshotMs), copyMs: round(copyMs), checkpoints: stalls.length,
      }
      if (json) console.log(JSON.stringify(result))
      else console.log(`${c.name} (${(parameters / 1e6).toFixed(1)} M parameters): step ${result.stepMs} ms, checkpoint stall ${result.stallMs} ms (${result.stallInSteps} steps; median of ${stalls.length}), of which rank 0's copy ${result.snapshotMs} ms`)
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  }
}


/**
 * Kill -9 → next step: a 3-worker elastic job (--min-workers 2) of examples/mnist-mlp with
 * default settings; once it trains, one worker is killed; the figure is the time from the
 * kill to the first step the job completes after it (a line appended to metrics.jsonl: no
 * step completes while a rank is missing, so that is the first step of the new round).
 */
export async function killToNextStep(): Promise<{ killToNextStepMs: number; steps: number; rounds: number }> {
  const out = mkdtempSync(join(tmpdir(), 'ringtrain-bench-elastic-'))
  const cli = fileURLToPath(new URL('../main.ts', import.meta.url))
  const task = fileURLToPath(new URL('../../../../examples/mnist-mlp/index.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'launch', '-n', '3', task, '--min-workers', '2', '--max-restarts', '0', '--max-steps', '400', '--quiet', '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk) => (output += chunk))
  child.stderr.on('data', (chunk) => (output += chunk))
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve))
  try {
    const metrics = join(out, 'metrics.jsonl')
    const lines = () => (existsSync(metrics) ? readFileSync(metrics, 'utf8').split('\n').filter(Boolean).length : 0)
    await until(() => lines() >= 30, 120_000, () => `the job did not reach step 30:\n${output}`)
    const victim = Number(/started worker 2 \(pid (\d+)\)/.exec(output)?.[1])
    const before = lines()
    const killedAt = performance.now()
    process.kill(victim, 'SIGKILL')
    await until(() => lines() > before, 60_000, () => `no step completed after the kill:\n${output}`, 1)
    const killToNextStepMs = performance.now() - killedAt
    const code = await exited
    if (code !== 0) throw new ConfigError(`the elastic run failed (exit code ${code}):\n${output}`)
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { steps: number; rounds: unknown[] }
    return { killToNextStepMs, steps: summary.steps, rounds: summary.rounds.length }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL')
    rmSync(out, { recursive: true, force: true })
  }
}

/** Resolves once `check()` holds (checked every `everyMs`); rejects with `message()` after `ms`. */
async function until(check: () => boolean, ms: number, message: () => string, everyMs = 20): Promise<void> {
  const deadline = performance.now() + ms
  while (!check()) {
    if (performance.now() > deadline) throw new ConfigError(message())
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}
