/**
 * A served data set (--serve-data) on the worker side, against a stand-in for the control
 * connection that answers from a local data set as the coordinator would: batches equal the
 * local ones bitwise, chunks are asked for ahead and let go behind, and the coordinator's
 * typed errors reach the caller.
 */
import { beforeAll, describe, expect, test } from 'vitest'
import { DistError, type DataChunk, type DataRequest, type MessageFields } from '@ringtrain/core'
import { arrayDataset, tf, type Dataset } from '@ringtrain/worker'
import { DataRequests, feedFor, servedDataset, type DataClient } from '@ringtrain/worker/unstable-internals-do-not-import'

beforeAll(async () => {
  await tf.setBackend('cpu')
})

// 40 samples of 16 384 floats (64 KiB a row): 7 samples fill one 512 KiB chunk (with targets).
const width = 16_384
const local = arrayDataset({
  inputs: Float32Array.from({ length: 40 * width }, (_, i) => Math.sin(i) * 1000),
  inputShape: [width],
  targets: Float32Array.from({ length: 40 }, (_, i) => i / 3),
  targetShape: [1],
})

/** Answers like the coordinator: a description, the rows asked for, or `failOn`'s typed error; records every request. */
function standIn(dataset: Dataset, failOn?: number) {
  const requests: MessageFields<DataRequest>[] = []
  const client: DataClient = {
    rank: 1,
    async requestData(fields, onDataChunk) {
      requests.push({ ...fields, rank: 1, round: 0 })
      const answer: MessageFields<DataChunk> = fields.indices === undefined
        ? { ...fields, length: dataset.length, inputLayout: { shape: [...dataset.stored!.inputs.shape], encoding: dataset.stored!.inputs.encoding }, targetLayout: { shape: [...dataset.stored!.targets.shape], encoding: dataset.stored!.targets.encoding } }
        : { ...fields, ...dataset.stored!.read(indicesOf(fields.indices)) }
      const indices = fields.indices === undefined ? [] : [...indicesOf(fields.indices)]
      const error = failOn !== undefined && indices.includes(failOn) ? new DistError('E_DATA', `rank 1 asked for sample ${failOn}`).toWire() : undefined
      setImmediate(() => onDataChunk({ type: 21, version: 0, jobId: 'job', ...(error ? { split: fields.split, requestId: fields.requestId, error } : answer) } as DataChunk))
    },
    onAbort: () => () => true,
  }
  return { client, requests }
}

const indicesOf = (bytes: Uint8Array) => new Uint32Array(Uint8Array.from(bytes).buffer)

function values(dataset: Dataset, indices: ArrayLike<number>): { x: Float32Array; y: Float32Array } {
  const { x, y } = dataset.batch(indices)
  const out = { x: (x as tf.Tensor).dataSync() as Float32Array, y: y.dataSync() as Float32Array }
  tf.dispose([x as tf.Tensor, y])
  return out
}

describe('served data sets', () => {
  test('batches equal the local ones bitwise; chunks are asked for two ahead and let go behind', async () => {
    const { client, requests } = standIn(local)
    const served = await servedDataset(new DataRequests(client, 10_000), 'train')
    expect([served.length, served.inputShape, served.targetShape]).toEqual([40, [width], [1]])
    const order = Int32Array.from({ length: 40 }, (_, i) => (i * 17) % 40)
    const feed = feedFor(served, order)
    const batchSize = 5
    for (let b = 0; b * batchSize < order.length; b++) {
      const indices = order.subarray(b * batchSize, (b + 1) * batchSize)
      await feed.ready(b * batchSize, b * batchSize + indices.length)
      const got = values(served, indices)
      const expected = values(local, indices)
      expect(Buffer.from(got.x.buffer).equals(Buffer.from(expected.x.buffer)), `batch ${b} inputs`).toBe(true)
      expect(Buffer.from(got.y.buffer).equals(Buffer.from(expected.y.buffer)), `batch ${b} targets`).toBe(true)
      // Batch 0 uses chunk 0 and asks for chunks 1 and 2 too: the description plus 3 requests.
      if (b === 0) expect(requests.length).toBe(4)
    }
    // 40 samples in chunks of 7: 6 chunks, each asked for once, in the order's sequence.
    const chunks = requests.slice(1).map((r) => [...indicesOf(r.indices!)])
    expect(chunks.map((c) => c.length)).toEqual([7, 7, 7, 7, 7, 5])
    expect(chunks.flat()).toEqual([...order])
    // Chunk 0 was let go once the batches moved past it: its first sample is no longer in memory.
    expect(() => served.batch([order[0]!])).toThrow(/was used before it arrived/)
    feed.close()
    expect(() => served.batch([order[39]!])).toThrow(/was used before it arrived/)
  })

  test("the coordinator's typed error (an index out of range) rejects the wait for that batch", async () => {
    const { client } = standIn(local, 3)
    const served = await servedDataset(new DataRequests(client, 10_000), 'train')
    const feed = feedFor(served, [0, 1, 2, 3])
    await expect(feed.ready(0, 2)).rejects.toMatchObject({ code: 'E_DATA', message: 'rank 1 asked for sample 3' })
  })

  test('a local data set needs no feed: ready() resolves at once', async () => {
    await expect(feedFor(local, [0, 1]).ready(0, 2)).resolves.toBeUndefined()
  })
})
