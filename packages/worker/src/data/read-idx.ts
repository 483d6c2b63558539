import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { gunzip } from 'node:zlib'
import { DistError } from '@ringtrain/core'

/** An IDX file of unsigned bytes (the MNIST format): its dimensions and its values. */
export interface IdxArray {
  shape: number[]
  values: Uint8Array
}

/** Magic numbers of the MNIST files: 0x00000801 labels [n], 0x00000803 images [n, rows, cols]. */
export const IDX_LABELS_MAGIC = 0x00000801
export const IDX_IMAGES_MAGIC = 0x00000803

const gunzipAsync = promisify(gunzip)

/**
 * Reads an IDX file of unsigned bytes, raw or gzip-compressed (recognized by its first two
 * bytes, 0x1f 0x8b, whatever the file name). Checks the magic number against `magic` and the
 * byte length against the dimensions in the header (big-endian uint32 each).
 *
 * @throws DistError (`E_DATA`) naming the file, expected and got, when the file cannot be
 *   decompressed, has another magic number, or is shorter or longer than its header says.
 */
export async function readIdx(path: string, magic: number): Promise<IdxArray> {
  let bytes: Uint8Array = await readFile(path)
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = await gunzipAsync(bytes)
    } catch (cause) {
      throw new DistError('E_DATA', `${path}: starts like gzip but cannot be decompressed (${(cause as Error).message}).`, { file: path }, { cause })
    }
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const dimensions = magic & 0xff
  const got = bytes.byteLength >= 4 ? view.getUint32(0) : undefined
  if (got !== magic) {
    throw new DistError(
      'E_DATA',
      `${path}: expected IDX magic number ${hex(magic)} (unsigned bytes, ${dimensions} dimension${dimensions === 1 ? '' : 's'}), ` +
        `got ${got === undefined ? `a file of ${bytes.byteLength} bytes` : hex(got)}.`,
      { file: path, expected: magic, got },
    )
  }
  const headerByteLength = 4 + 4 * dimensions
  if (bytes.byteLength < headerByteLength) {
    throw new DistError('E_DATA', `${path}: expected a header of ${headerByteLength} bytes, got ${bytes.byteLength} bytes.`, {
      file: path,
      expected: headerByteLength,
      got: bytes.byteLength,
    })
  }
  const shape = Array.from({ length: dimensions }, (_, d) => view.getUint32(4 + 4 * d))
  const expectedByteLength = headerByteLength + shape.reduce((product, dim) => product * dim, 1)
  if (bytes.byteLength !== expectedByteLength) {
    throw new DistError(
      'E_DATA',
      `${path}: expected ${expectedByteLength} bytes for dimensions [${shape.join(', ')}], got ${bytes.byteLength} bytes.`,
      { file: path, expected: expectedByteLength, got: bytes.byteLength },
    )
  }
  return { shape, values: bytes.subarray(headerByteLength) }
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`
}
