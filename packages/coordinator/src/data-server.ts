/**
 * `--serve-data`: the coordinator answers each worker's DataRequest with the stored rows of
 * the samples it asked for (DataChunk). What the data is, and how it was loaded, is the
 * caller's business (the CLI loads the task's data sets): here it is a {@link DataSource}
 * of rows, and every request is checked against it before it is read.
 */
import { DATA_CHUNK_BYTES, DistError, FrameError, MessageType, controlMessage, type DataChunk, type DataRequest, type DataSplit, type MessageFields, type WireFieldLayout } from '@ringtrain/core'

/** One split of a served data set: its size and how its rows are laid out. */
export interface DataDescription {
  length: number
  inputLayout: WireFieldLayout
  targetLayout: WireFieldLayout
  /** Bytes of one sample's stored rows (inputs and targets together). */
  rowBytes: number
}

/** The data a coordinator serves: the task's splits, as stored rows. */
export interface DataSource {
  /** The split's description, or undefined when the task has no such split. */
  describe(split: DataSplit): DataDescription | undefined
  /** Stored rows of these samples (each in range), in this order. */
  read(split: DataSplit, indices: Uint32Array): { inputs: Uint8Array; targets: Uint8Array }
}

/**
 * The answer to `request` from `rank`: a description, the rows, or the typed error that says
 * why not (a split the task lacks, an index out of range, a request over DATA_CHUNK_BYTES).
 */
export function answerDataRequest(source: DataSource | undefined, request: DataRequest, rank: number): MessageFields<DataChunk> {
  const { split, requestId } = request
  try {
    if (source === undefined) {
      throw new DistError('E_CONFIG', `rank ${rank} asked the coordinator for samples of split '${split}', but the coordinator was started without --serve-data.`, { rank, split, expected: '--serve-data', got: 'no data' })
    }
    const description = source.describe(split)
    if (description === undefined) {
      throw new DistError('E_DATA', `rank ${rank} asked for samples of split '${split}', which the task has no data set for.`, { rank, split })
    }
    if (request.indices === undefined) {
      const { length, inputLayout, targetLayout } = description
      return { split, requestId, length, inputLayout, targetLayout }
    }
    const indices = decodeIndices(request.indices, rank, split)
    const bytes = indices.length * description.rowBytes
    if (indices.length > 1 && bytes > DATA_CHUNK_BYTES) {
      throw new FrameError('E_FRAME_TOO_LARGE', `rank ${rank} asked for ${indices.length} samples of split '${split}' (${bytes} bytes); one request may ask for at most ${DATA_CHUNK_BYTES} bytes.`, { rank, split, expected: DATA_CHUNK_BYTES, got: bytes })
    }
    for (const index of indices) {
      if (index >= description.length) {
        throw new DistError('E_DATA', `rank ${rank} asked for sample ${index} of split '${split}', which has ${description.length} samples (0 … ${description.length - 1}).`, { rank, split, index, length: description.length })
      }
    }
    return { split, requestId, ...source.read(split, indices) }
  } catch (error) {
    const typed = error instanceof DistError ? error : new DistError('E_DATA', `the coordinator could not read samples of split '${split}' for rank ${rank}: ${(error as Error).message}`, { rank, split })
    return { split, requestId, error: typed.toWire() }
  }
}

/** The uint32 little-endian indices of a request. */
function decodeIndices(bytes: Uint8Array, rank: number, split: DataSplit): Uint32Array {
  if (bytes.byteLength % 4 !== 0) {
    throw new FrameError('E_BAD_FRAME', `rank ${rank} sent a DataRequest for split '${split}' whose indices are ${bytes.byteLength} bytes; expected a multiple of 4 (uint32 each).`, { rank, split, expected: 'a multiple of 4', got: bytes.byteLength })
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return Uint32Array.from({ length: bytes.byteLength / 4 }, (_, i) => view.getUint32(4 * i, true))
}

/** The DataChunk message for `fields`. */
export function dataChunk(jobId: string, fields: MessageFields<DataChunk>): DataChunk {
  return controlMessage(MessageType.DataChunk, jobId, fields)
}
