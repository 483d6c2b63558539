/** The TensorBoard charts of one metrics.jsonl line: train/ for what training does, perf/ for how fast. */
import type { MetricsLine } from '../rendezvous/types.js'

export function scalarsOf(line: MetricsLine): Record<string, number | undefined> {
  return {
    'train/loss': line.loss,
    'train/learning_rate': line.learningRate,
    'perf/samples_per_second': line.samplesPerSecond,
    'perf/compute_ms': line.computeMs,
    'perf/allreduce_ms': line.allReduceMs,
  }
}
