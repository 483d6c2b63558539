/** The coordinator's answers to DataRequest (--serve-data): rows, descriptions, and typed refusals. */
import { describe, expect, test } from 'vitest'
import { DATA_CHUNK_BYTES, MessageType, controlMessage, type DataSplit } from '@ringtrain/core'
import { answerDataRequest } from '@ringtrain/coordinator/unstable-internals-do-not-import'
import type { DataSource } from '@ringtrain/coordinator'

// 5 training samples: input row i is [i, i+1] as bytes, target row i is [i].
const source: DataSource = {
  describe: (split: DataSplit) => (split === 'train' ? { length: 5, rowBytes: 3, inputLayout: { shape: [2], encoding: { type: 'lookup', values: [0, 1, 2, 3, 4, 5] } }, targetLayout: { shape: [3], encoding: { type: 'oneHot', classes: 3 } } } : undefined),
  read: (_split, indices) => ({ inputs: Uint8Array.from([...indices].flatMap((i) => [i, i + 1])), targets: Uint8Array.from(indices) }),
}

const request = (split: DataSplit, indices?: number[]) =>
  controlMessage(MessageType.DataRequest, 'job', { rank: 2, round: 0, split, requestId: 9, ...(indices ? { indices: new Uint8Array(Uint32Array.from(indices).buffer) } : {}) })

describe('answerDataRequest', () => {
  test('describes a split, and sends the stored rows of the indices asked for, in their order', () => {
    expect(answerDataRequest(source, request('train'), 2)).toMatchObject({ split: 'train', requestId: 9, length: 5, inputLayout: { shape: [2] } })
    const rows = answerDataRequest(source, request('train', [4, 0, 4]), 2)
    expect(rows).toEqual({ split: 'train', requestId: 9, inputs: Uint8Array.from([4, 5, 0, 1, 4, 5]), targets: Uint8Array.from([4, 0, 4]) })
  })

  test('an index out of range is E_DATA naming the rank, split, index and length', () => {
    const { error } = answerDataRequest(source, request('train', [1, 5]), 2)
    expect(error).toMatchObject({ code: 'E_DATA', message: "rank 2 asked for sample 5 of split 'train', which has 5 samples (0 … 4).", context: { rank: 2, split: 'train', index: 5, length: 5 } })
  })

  test('a split the task lacks, a request over the chunk limit, bad index bytes, and no --serve-data are typed errors', () => {
    expect(answerDataRequest(source, request('eval'), 1).error).toMatchObject({ code: 'E_DATA', message: "rank 1 asked for samples of split 'eval', which the task has no data set for." })
    const many = Array.from({ length: Math.floor(DATA_CHUNK_BYTES / 3) + 1 }, () => 0)
    expect(answerDataRequest(source, request('train', many), 1).error).toMatchObject({ code: 'E_FRAME_TOO_LARGE' })
    const odd = { ...request('train'), indices: new Uint8Array(5) }
    expect(answerDataRequest(source, odd, 1).error).toMatchObject({ code: 'E_BAD_FRAME', message: "rank 1 sent a DataRequest for split 'train' whose indices are 5 bytes; expected a multiple of 4 (uint32 each)." })
    expect(answerDataRequest(undefined, request('train'), 0).error).toMatchObject({ code: 'E_CONFIG', message: "rank 0 asked the coordinator for samples of split 'train', but the coordinator was started without --serve-data." })
  })
})
