/**
 * Folding per-rank reports into job-level numbers: one metrics line per step once every
 * rank reported it, and the job summary once every rank is done. Pure functions.
 */
import type { StepMetrics, WorkerDone } from '@ringtrain/core'
import type { JobSummary, MetricsLine, RendezvousState } from './types.js'

/** Aggregates one step over all ranks; `reports` holds exactly one report per rank. */
export function metricsLine(reports: readonly StepMetrics[]): MetricsLine {
  const first = reports[0]!
  const samples = sum(reports.map((r) => r.samples))
  const slowestStepMs = Math.max(...reports.map((r) => r.computeMs + r.allReduceMs))
  const skipped = reports.filter((r) => r.skippedSteps !== undefined).map((r) => r.skippedSteps!)
  return {
    step: first.step,
    epoch: Math.max(...reports.map((r) => r.epoch)),
    loss: sum(reports.map((r) => r.loss)) / reports.length,
    learningRate: first.learningRate,
    samplesPerSecond: slowestStepMs > 0 ? (samples * 1000) / slowestStepMs : 0,
    computeMs: Math.max(...reports.map((r) => r.computeMs)),
    allReduceMs: Math.max(...reports.map((r) => r.allReduceMs)),
    bytesSent: sum(reports.map((r) => r.bytesSent)),
    // The same on every rank (they skip together); max, should an old worker leave it out.
    ...(skipped.length > 0 ? { skippedSteps: Math.max(...skipped) } : {}),
  }
}

/** Adds one written line's samples and slowest step time to the running totals (mutates `state`). */
export function addToTotals(state: RendezvousState, reports: readonly StepMetrics[]): void {
  state.totals.samples += sum(reports.map((r) => r.samples))
  state.totals.stepTimeMs += Math.max(...reports.map((r) => r.computeMs + r.allReduceMs))
  state.totals.stepsWritten += 1
}

/** The job summary from every rank's final report (by rank, all present). */
export function jobSummary(state: RendezvousState): JobSummary {
  const reports: WorkerDone[] = []
  for (let rank = 0; rank < state.config.worldSize; rank++) reports.push(state.doneReports[rank]!)
  const hashes = reports.map((r) => r.parameterHash)
  return {
    jobId: state.config.jobId,
    workers: reports.length,
    steps: Math.max(...reports.map((r) => r.steps)),
    epochs: Math.max(state.config.epochs ?? 0, ...reports.map((r) => r.epochs ?? 0)),
    samplesPerSecond: state.totals.stepTimeMs > 0 ? (state.totals.samples * 1000) / state.totals.stepTimeMs : 0,
    finalLoss: sum(reports.map((r) => r.finalLoss)) / reports.length,
    eval: evalMeans(reports),
    replicasIdentical: hashes.every((h) => h === hashes[0]),
    skippedSteps: Math.max(0, ...reports.map((r) => r.skippedSteps ?? 0)),
    parameterHashes: hashes,
    backends: reports.map((r) => r.backend),
    ...(reports.every((r) => r.maxRssBytes !== undefined) ? { maxRssBytes: reports.map((r) => r.maxRssBytes!) } : {}),
    dropped: { ...state.dropped },
    ...(state.stopRequested !== undefined ? { stopped: state.stopRequested } : {}),
    rounds: state.rounds,
    ...(state.lost.length > 0 ? { lost: state.lost.map(({ atMs: _at, ...rest }) => rest) } : {}),
    ...(reports[0]?.checkpointDir !== undefined && reports[0].checkpointStep !== undefined ? { checkpoint: { step: reports[0].checkpointStep, dir: reports[0].checkpointDir } } : {}),
    ...(state.stallReports.length > 0 ? { stallReports: state.stallReports } : {}),
  }
}

/** Σsum / Σcount per metric over ranks: the mean over the whole evaluation set. */
function evalMeans(reports: readonly WorkerDone[]): Record<string, number> {
  const totals: Record<string, { sum: number; count: number }> = {}
  for (const report of reports) {
    for (const [metric, { sum: s, count }] of Object.entries(report.eval)) {
      const total = (totals[metric] ??= { sum: 0, count: 0 })
      total.sum += s
      total.count += count
    }
  }
  return Object.fromEntries(Object.entries(totals).map(([metric, t]) => [metric, t.count > 0 ? t.sum / t.count : Number.NaN]))
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0)
}
