/**
 * `--serve-data` on the coordinator's machine: the task's data sets, loaded once, as the
 * stored rows the coordinator sends (packages/coordinator/src/data-server.ts). The
 * coordinator sees only this plain interface: it knows nothing of tfjs or data sets.
 */
import { ConfigError, DATA_CHUNK_BYTES, DistError, type DataSplit, type WireFieldLayout } from '@ringtrain/core'
import { loadTask } from '../task/load-task.js'
import type { Dataset } from './dataset.js'
import { rowBytes, type FieldLayout, type StoredSamples } from './stored-samples.js'

/** The splits of a task's data, as @ringtrain/coordinator's `DataSource` reads them. */
export interface TaskDataSource {
  /** The task's name, for messages. */
  readonly task: string
  describe(split: DataSplit): { length: number; inputLayout: WireFieldLayout; targetLayout: WireFieldLayout; rowBytes: number } | undefined
  read(split: DataSplit, indices: Uint32Array): { inputs: Uint8Array; targets: Uint8Array }
}

/**
 * Loads the task at `taskPath` and its data sets (train, and eval when it has one).
 *
 * @throws ConfigError (`E_CONFIG`) naming the task and the split when a loader fails (a
 *   missing file, say), returns a data set without stored samples (one written by hand
 *   without `stored`: it cannot be served), or one whose samples are each over
 *   DATA_CHUNK_BYTES; a loader's own DistError passes through.
 */
export async function loadDataSource(taskPath: string): Promise<TaskDataSource> {
  const task = await loadTask(taskPath)
  const splits = new Map<DataSplit, { length: number; stored: StoredSamples }>()
  const loaders: [DataSplit, (() => Dataset | Promise<Dataset>) | undefined][] = [['train', task.data.train], ['eval', task.data.eval]]
  for (const [split, loader] of loaders) {
    if (loader === undefined) continue
    const what = `--serve-data: task '${task.name}' data.${split}()`
    let dataset: Dataset
    try {
      dataset = await loader()
    } catch (cause) {
      if (cause instanceof DistError) throw cause
      throw new ConfigError(`${what} failed on the coordinator's machine: ${(cause as Error).message}`, { task: task.name, split }, { cause })
    }
    if (dataset?.stored === undefined) {
      throw new ConfigError(`${what} returned a data set without stored samples, which cannot be served; use a built-in loader (arrayDataset, csvDataset, jsonLinesDataset, idxDataset, mnistDataset), or run without --serve-data.`, { task: task.name, split })
    }
    const sampleBytes = rowBytes(dataset.stored.inputs) + rowBytes(dataset.stored.targets)
    if (sampleBytes > DATA_CHUNK_BYTES) {
      throw new ConfigError(`${what}: one sample is ${sampleBytes} bytes stored; --serve-data sends samples of at most ${DATA_CHUNK_BYTES} bytes. Give the workers the data files instead.`, { task: task.name, split, expected: `≤ ${DATA_CHUNK_BYTES}`, got: sampleBytes })
    }
    splits.set(split, { length: dataset.length, stored: dataset.stored })
  }
  return {
    task: task.name,
    describe(split) {
      const data = splits.get(split)
      if (data === undefined) return undefined
      const { inputs, targets } = data.stored
      return { length: data.length, inputLayout: toWire(inputs), targetLayout: toWire(targets), rowBytes: rowBytes(inputs) + rowBytes(targets) }
    },
    read(split, indices) {
      return splits.get(split)!.stored.read(indices)
    },
  }
}

function toWire(layout: FieldLayout): WireFieldLayout {
  return { shape: [...layout.shape], encoding: layout.encoding }
}
