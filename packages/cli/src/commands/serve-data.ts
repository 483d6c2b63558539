/**
 * `--serve-data` (coordinator and launch): the coordinator's process loads the task's data
 * sets and sends each worker the samples of its shard, so worker machines need no data files.
 */
import type { DataSource } from '@ringtrain/coordinator'
import type { JobConfig } from '@ringtrain/core'

export const serveDataOption = {
  type: 'boolean',
  default: false,
  describe: "read the task's data here and send each worker its shard's samples (worker machines need no data files)",
} as const

/**
 * With `serve`, the task's data loaded here (before any worker joins: data that cannot load
 * fails the command now, naming the task and split) and the config that tells the workers.
 */
export async function withServedData(config: JobConfig, serve: boolean, log: (line: string) => void): Promise<{ config: JobConfig; dataSource?: DataSource }> {
  if (!serve) return { config }
  const { loadDataSource } = await import('@ringtrain/worker')
  const started = performance.now()
  const dataSource = await loadDataSource(config.task)
  const sizes = (['train', 'eval'] as const).flatMap((split) => {
    const description = dataSource.describe(split)
    return description === undefined ? [] : [`${split} ${description.length} samples (${(description.length * description.rowBytes / 2 ** 20).toFixed(1)} MiB stored)`]
  })
  log(`serves the data of task '${dataSource.task}' to the workers: ${sizes.join(', ')}; loaded in ${Math.round(performance.now() - started)} ms.`)
  return { config: { ...config, serveData: true }, dataSource }
}
