/**
 * `ringtrain bench compute`: milliseconds per training step (forward, backward, Adam update;
 * batch 64; median after warm-up) for an MLP 784-512-256-10 and a small CNN, on each compute
 * backend with and without the training-kernel pack. One JSON line per combination with
 * --json: {"model":"cnn","backend":"wasm+pack","msPerStep":…}; a combination that cannot
 * train prints "msPerStep":null and a "reason".
 *
 * Each combination runs in a fresh child process (this file, forked with
 * RINGTRAIN_BENCH_COMPUTE_CASE set), because tfjs kernel registrations and the active
 * backend are global to a process.
 */
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { ConfigError } from '@ringtrain/core'

const CASE_ENV = 'RINGTRAIN_BENCH_COMPUTE_CASE'
const models = ['mlp', 'cnn'] as const
const combinations = [
  { backend: 'cpu', pack: false },
  { backend: 'cpu', pack: true },
  { backend: 'wasm', pack: false },
  { backend: 'wasm', pack: true },
] as const
// Stock cpu takes ≈ 26 s per CNN step: past this budget a case stops after its first timed step.
const BUDGET_MS = 20_000

interface ComputeCase { model: (typeof models)[number]; backend: 'cpu' | 'wasm'; pack: boolean; timedSteps: number; batchSize: number }
export interface ComputeFigure {
  model: string
  backend: string
  msPerStep: number | null
  timedSteps: number
  batchSize: number
  reason?: string
}

export async function run(argv: Record<string, unknown>): Promise<void> {
  const timedSteps = Number(argv['iterations'] ?? 20)
  if (!Number.isInteger(timedSteps) || timedSteps < 10) throw new ConfigError(`--iterations (${timedSteps}) must be an integer of at least 10.`)
  const json = argv['json'] === true
  if (!json) console.log('model  backend      ms/step  steps')
  for (const model of models) {
    for (const { backend, pack } of combinations) {
      const figure = await runCase({ model, backend, pack, timedSteps, batchSize: 64 })
      console.log(json ? JSON.stringify(figure) : formatRow(figure))
    }
  }
}

function label(c: ComputeCase): string {
  return c.pack ? `${c.backend}+pack` : c.backend
}

function runCase(c: ComputeCase): Promise<ComputeFigure> {
  return new Promise((resolve) => {
    const child = fork(fileURLToPath(import.meta.url), [], {
      env: { ...process.env, [CASE_ENV]: JSON.stringify(c) },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    })
    let stderr = ''
    let figure: ComputeFigure | undefined
    child.stderr?.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-2000) })
    child.on('message', (message) => { figure = message as ComputeFigure })
    child.on('exit', (code) => {
      resolve(figure ?? { model: c.model, backend: label(c), msPerStep: null, timedSteps: 0, batchSize: c.batchSize, reason: `the benchmark process exited with code ${code}: ${stderr.trim().split('\n').at(-1) ?? ''}` })
    })
  })
}

/** Runs in the forked process: select the backend, time the steps, report over IPC. */
async function runChild(c: ComputeCase): Promise<ComputeFigure> {
  const { selectBackend, measureStepMs } = await import('@ringtrain/worker')
  const base = { model: c.model, backend: label(c) }
  await selectBackend(c.backend, { trainingKernels: c.pack })
  try {
    const timing = await measureStepMs({ model: c.model, batchSize: c.batchSize, warmupSteps: 3, timedSteps: c.timedSteps, budgetMs: BUDGET_MS })
    return { ...base, msPerStep: Math.round(timing.msPerStep * 10) / 10, timedSteps: timing.stepsMs.length, batchSize: c.batchSize }
  } catch (error) {
    // Stock wasm lacks Conv2DBackpropFilter (tfjs issues 8474, 8082): the CNN cannot train there.
    return { ...base, msPerStep: null, timedSteps: 0, batchSize: c.batchSize, reason: error instanceof Error ? error.message : String(error) }
  }
}

function formatRow(f: ComputeFigure): string {
  const ms = f.msPerStep === null ? `—  (${f.reason})` : f.msPerStep.toFixed(1).padStart(8)
  return `${f.model.padEnd(6)} ${f.backend.padEnd(10)} ${ms}${f.msPerStep === null ? '' : `  ${f.timedSteps}`}`
}

const childCase = process.env[CASE_ENV]
if (childCase && process.send) {
  const figure = await runChild(JSON.parse(childCase) as ComputeCase)
  process.send(figure, () => process.exit(0))
}
