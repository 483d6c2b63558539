/**
 * `--serve-data` on the worker: the task's data sets come from the coordinator, not from the
 * task's loaders. A served data set knows its length and layout (asked once); its rows arrive
 * in chunks of at most DATA_CHUNK_BYTES, which a {@link Feed} asks for ahead of the batches
 * that use them, so `batch()` stays synchronous and reads from memory. Only the rows of the
 * chunks in use and the next ones are held. See docs/design.md, "Serving data".
 */
import { CollectiveAbortedError, CollectiveTimeoutError, DATA_CHUNK_BYTES, DistError, errorFromWire, type DataChunk, type DataRequest, type DataSplit, type MessageFields, type WireFieldLayout } from '@ringtrain/core'
import type { Task } from '../task/define-task.js'
import type { Dataset } from './dataset.js'
import { storedDataset } from './dense-dataset.js'
import { rowBytes, type FieldLayout, type RowSource, type StoredRows } from './stored-samples.js'

/** What a served data set needs of the control connection (a CoordinatorClient). */
export interface DataClient {
  readonly rank: number
  requestData(fields: Omit<MessageFields<DataRequest>, 'rank' | 'round'>, onDataChunk: (message: DataChunk) => void): Promise<void>
  onAbort(callback: (reason: string, error: DistError) => void): () => void
}

/** Chunks asked for beyond the ones the current batch needs. */
const CHUNKS_AHEAD = 2

/** Requests to the coordinator and their answers, by request id; each waits at most `timeoutMs`. */
export class DataRequests {
  private nextId = 0
  private readonly pending = new Map<number, { resolve(chunk: DataChunk): void; reject(error: Error): void; timer: NodeJS.Timeout }>()

  constructor(private readonly client: DataClient, private readonly timeoutMs: number) {
    client.onAbort((reason, error) => {
      for (const [id, request] of this.pending) {
        this.pending.delete(id)
        clearTimeout(request.timer)
        request.reject(error ?? new CollectiveAbortedError('E_CLOSED', `the job ended while rank ${client.rank} waited for samples: ${reason}`))
      }
    })
  }

  /** The coordinator's answer for these samples of `split` (a description without `indices`); rejects with its typed error. */
  ask(split: DataSplit, indices?: ArrayLike<number>): Promise<DataChunk> {
    const requestId = this.nextId++
    const answer = new Promise<DataChunk>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId)
        reject(new CollectiveTimeoutError('E_TIMEOUT', `rank ${this.client.rank} asked the coordinator for ${indices === undefined ? 'the description' : `${indices.length} samples`} of split '${split}' and got no answer within ${this.timeoutMs} ms.`, { rank: this.client.rank, split, expected: 'a DataChunk', got: 'no answer', timeoutMs: this.timeoutMs }))
      }, this.timeoutMs)
      this.pending.set(requestId, { resolve, reject, timer })
    })
    const sent = this.client.requestData({ split, requestId, ...(indices === undefined ? {} : { indices: encodeIndices(indices) }) }, (chunk) => this.receive(chunk))
    sent.catch((error: Error) => this.settle(requestId)?.reject(error))
    return answer
  }

  private receive(chunk: DataChunk): void {
    const request = this.settle(chunk.requestId)
    if (request === undefined) return
    if (chunk.error !== undefined) request.reject(errorFromWire(chunk.error))
    else request.resolve(chunk)
  }

  private settle(requestId: number) {
    const request = this.pending.get(requestId)
    this.pending.delete(requestId)
    if (request !== undefined) clearTimeout(request.timer)
    return request
  }
}

/** The rows of one chunk, and how many feeds still use them. */
interface CachedRow {
  rows: StoredRows
  k: number
  refs: number
}

interface Served {
  requests: DataRequests
  split: DataSplit
  bytesPerSample: number
  inputs: FieldLayout
  targets: FieldLayout
  cache: Map<number, CachedRow>
}

const served = new WeakMap<Dataset, Served>()

/**
 * The data set `split` as the coordinator serves it.
 *
 * @throws DistError the coordinator's typed error (a split the task lacks, data it could not
 *   read), `E_BAD_FRAME` for a layout this worker cannot decode, or a timeout.
 */
export async function servedDataset(requests: DataRequests, split: DataSplit): Promise<Dataset> {
  const description = await requests.ask(split)
  const where = `split '${split}' served by the coordinator`
  const inputs = layoutFromWire(description.inputLayout, where, 'inputLayout')
  const targets = layoutFromWire(description.targetLayout, where, 'targetLayout')
  const length = description.length ?? 0
  const cache = new Map<number, CachedRow>()
  const source = (field: 'inputs' | 'targets', bytes: number): RowSource => ({
    rowBytes: bytes,
    gather(indices, out) {
      for (let k = 0; k < indices.length; k++) {
        const entry = cache.get(indices[k]!)
        if (entry === undefined) throw new DistError('E_INTERNAL', `${where}: sample ${indices[k]} was used before it arrived; batches of a served data set must be asked for through its feed.`, { split, index: indices[k] })
        out.set(entry.rows[field].subarray(entry.k * bytes, (entry.k + 1) * bytes), k * bytes)
      }
    },
  })
  const dataset = storedDataset({
    length,
    inputs: { ...inputs, rows: source('inputs', rowBytes(inputs)) },
    targets: { ...targets, rows: source('targets', rowBytes(targets)) },
  }, where)
  served.set(dataset, { requests, split, bytesPerSample: rowBytes(inputs) + rowBytes(targets), inputs, targets, cache })
  return dataset
}

/**
 * `task` with its data sets served by the coordinator: its own loaders are never called
 * (on a machine without the data files they could not be). Each request waits at most `timeoutMs`.
 */
export function withServedData(task: Task, client: DataClient, timeoutMs: number): Task {
  const requests = new DataRequests(client, timeoutMs)
  return Object.freeze({
    ...task,
    data: Object.freeze({
      train: () => servedDataset(requests, 'train'),
      ...(task.data.eval !== undefined ? { eval: () => servedDataset(requests, 'eval') } : {}),
    }),
  })
}

/** Makes sure the samples a stretch of batches uses are in memory before `batch()` reads them. */
export interface Feed {
  /** Resolves once the samples at positions [from, to) of the order are in memory; asks for the next chunks too. */
  ready(from: number, to: number): Promise<void>
  /** Lets go of every chunk this feed holds. */
  close(): void
}

/**
 * The feed of `dataset` for samples used in `order` (a rank's shard, batch after batch): a
 * served data set fetches chunks of the order ahead of use; any other has its samples already
 * and needs none.
 */
export function feedFor(dataset: Dataset, order: ArrayLike<number>): Feed {
  const state = served.get(dataset)
  if (state === undefined) return { ready: () => Promise.resolve(), close: () => {} }
  const perChunk = Math.max(1, Math.floor(DATA_CHUNK_BYTES / Math.max(1, state.bytesPerSample)))
  const chunkCount = Math.ceil(order.length / perChunk)
  const chunks = new Map<number, { indices: number[]; arrived: Promise<void>; held: boolean }>()
  const release = (c: number) => {
    const chunk = chunks.get(c)
    chunks.delete(c)
    if (chunk === undefined || !chunk.held) return
    for (const index of chunk.indices) {
      const entry = state.cache.get(index)
      if (entry !== undefined && --entry.refs === 0) state.cache.delete(index)
    }
  }
  const fetch = (c: number) => {
    const indices = Array.from({ length: Math.min(perChunk, order.length - c * perChunk) }, (_, k) => order[c * perChunk + k]!)
    const chunk = { indices, held: false, arrived: Promise.resolve() }
    chunk.arrived = state.requests.ask(state.split, indices).then((answer) => {
      if (chunks.get(c) !== chunk) return // released before it came
      const rows = checkRows(answer, indices.length, state)
      indices.forEach((index, k) => {
        const entry = state.cache.get(index)
        if (entry !== undefined) entry.refs++
        else state.cache.set(index, { rows, k, refs: 1 })
      })
      chunk.held = true
    })
    chunk.arrived.catch(() => undefined) // awaited by ready(); a chunk asked for ahead may never be
    chunks.set(c, chunk)
  }
  return {
    async ready(from, to) {
      if (to <= from) return
      const first = Math.floor(from / perChunk)
      const last = Math.floor((to - 1) / perChunk)
      for (const c of [...chunks.keys()]) if (c < first) release(c)
      for (let c = first; c <= Math.min(last + CHUNKS_AHEAD, chunkCount - 1); c++) if (!chunks.has(c)) fetch(c)
      for (let c = first; c <= last; c++) await chunks.get(c)!.arrived
    },
    close() {
      for (const c of [...chunks.keys()]) release(c)
    },
  }
}

/** The rows of an answer, checked against the samples asked for. */
function checkRows(answer: DataChunk, count: number, state: Served): StoredRows {
  const fields = [['inputs', rowBytes(state.inputs)], ['targets', rowBytes(state.targets)]] as const
  for (const [field, bytes] of fields) {
    const got = answer[field]?.byteLength ?? 0
    if (got !== count * bytes) throw new DistError('E_BAD_FRAME', `split '${state.split}' served by the coordinator: got ${got} bytes of ${field} for ${count} samples; expected ${count * bytes}.`, { split: state.split, field, expected: count * bytes, got })
  }
  return { inputs: Uint8Array.from(answer.inputs!), targets: Uint8Array.from(answer.targets!) }
}

/** A layout from the coordinator, checked to be one this worker decodes. */
function layoutFromWire(wire: WireFieldLayout | undefined, where: string, field: string): FieldLayout {
  const encoding = wire?.encoding
  const ok = encoding?.type === 'float32' || (encoding?.type === 'lookup' && Array.isArray(encoding.values)) || (encoding?.type === 'oneHot' && encoding.classes !== undefined)
  if (wire === undefined || !ok) throw new DistError('E_BAD_FRAME', `${where}: its ${field} is ${JSON.stringify(wire)}; expected a shape and an encoding float32, lookup (values) or oneHot (classes).`, { field, got: JSON.stringify(wire) })
  return { shape: wire.shape, encoding: encoding as FieldLayout['encoding'] }
}

/** Indices as uint32 little-endian bytes. */
function encodeIndices(indices: ArrayLike<number>): Uint8Array {
  const bytes = new Uint8Array(indices.length * 4)
  const view = new DataView(bytes.buffer)
  for (let k = 0; k < indices.length; k++) view.setUint32(4 * k, indices[k]!, true)
  return bytes
}
