/**
 * Evaluation split across ranks: rank r takes samples r, r+W, … (no padding, so no sample
 * is counted twice) and reports sums (`{sum, count}` per metric); the coordinator adds the
 * sums of all ranks and divides once, never averaging averages. The size of the whole set
 * goes with them, so the coordinator can check each rank's counts against its shard.
 */
import { evalShard } from '@ringtrain/core'
import type { Task } from '../task/define-task.js'
import { yieldToEventLoop } from './yield-to-event-loop.js'
import type { Replica } from '../train/replica.js'
import { feedFor } from '../data/served-dataset.js'

const evalBatchSize = 256

/** The WorkerDone fields of an evaluation: this rank's sums, and the whole set's size (absent without eval data). */
export interface EvalReport {
  eval: Record<string, { sum: number; count: number }>
  evalExamples?: number
}

export async function evaluateShard(
  replica: Replica,
  task: Task,
  where: { rank: number; worldSize: number },
): Promise<EvalReport> {
  if (!task.data.eval) return { eval: {} }
  const data = await task.data.eval()
  const shard = evalShard({ length: data.length, rank: where.rank, worldSize: where.worldSize })
  const totals: Record<string, { sum: number; count: number }> = {}
  const feed = feedFor(data, shard)
  for (let start = 0; start < shard.length; start += evalBatchSize) {
    await feed.ready(start, Math.min(start + evalBatchSize, shard.length))
    // Compute is synchronous: give heartbeat timers a turn between batches.
    await yieldToEventLoop()
    const batch = data.batch(shard.subarray(start, start + evalBatchSize))
    const sums = replica.evaluate(batch)
    for (const x of Array.isArray(batch.x) ? batch.x : [batch.x]) x.dispose()
    batch.y.dispose()
    for (const [name, { sum, count }] of Object.entries(sums)) {
      const total = (totals[name] ??= { sum: 0, count: 0 })
      total.sum += sum
      total.count += count
    }
  }
  feed.close()
  return { eval: totals, evalExamples: data.length }
}
