import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { open, readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { gunzip } from 'node:zlib'
import { DistError } from '@ringtrain/core'
import { memoryRows, type RowSource } from './stored-samples.js'

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
  const { shape, headerByteLength } = checkHeader(path, magic, bytes, bytes.byteLength)
  return { shape, values: bytes.subarray(headerByteLength) }
}

/**
 * Checks an IDX header (the first bytes of a file of `fileByteLength` bytes, decompressed):
 * magic number, header length, and a file length that matches the dimensions.
 */
function checkHeader(path: string, magic: number, bytes: Uint8Array, fileByteLength: number): { shape: number[]; headerByteLength: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const dimensions = magic & 0xff
  const got = bytes.byteLength >= 4 ? view.getUint32(0) : undefined
  if (got !== magic) {
    throw new DistError(
      'E_DATA',
      `${path}: expected IDX magic number ${hex(magic)} (unsigned bytes, ${dimensions} dimension${dimensions === 1 ? '' : 's'}), ` +
        `got ${got === undefined ? `a file of ${fileByteLength} bytes` : hex(got)}.`,
      { file: path, expected: magic, got },
    )
  }
  const headerByteLength = 4 + 4 * dimensions
  if (bytes.byteLength < headerByteLength) {
    throw new DistError('E_DATA', `${path}: expected a header of ${headerByteLength} bytes, got ${fileByteLength} bytes.`, {
      file: path,
      expected: headerByteLength,
      got: fileByteLength,
    })
  }
  const shape = Array.from({ length: dimensions }, (_, d) => view.getUint32(4 + 4 * d))
  const expectedByteLength = headerByteLength + shape.reduce((product, dim) => product * dim, 1)
  if (fileByteLength !== expectedByteLength) {
    throw new DistError(
      'E_DATA',
      `${path}: expected ${expectedByteLength} bytes for dimensions [${shape.join(', ')}], got ${fileByteLength} bytes.`,
      { file: path, expected: expectedByteLength, got: fileByteLength },
    )
  }
  return { shape, headerByteLength }
}

/**
 * An IDX file of unsigned bytes as rows of its first dimension (an image each), checked as
 * {@link readIdx} checks it. A raw file is not read into memory: each `gather` reads the rows
 * it needs from the file (through the page cache, which the workers of one machine share).
 * A gzip file is decompressed into memory once.
 *
 * @throws DistError (`E_DATA`) as {@link readIdx}; `gather` throws it naming the file when
 *   the file changed size since it was opened.
 */
export async function openIdxRows(path: string, magic: number): Promise<{ shape: number[]; rows: RowSource }> {
  const file = await open(path, 'r')
  let head: Uint8Array
  let size: number
  try {
    size = (await file.stat()).size
    head = new Uint8Array(Math.min(size, 4 + 4 * (magic & 0xff)))
    await file.read(head, 0, head.byteLength, 0)
  } finally {
    await file.close()
  }
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const { shape, values } = await readIdx(path, magic)
    return { shape, rows: memoryRows(values, rowLength(shape)) }
  }
  const { shape, headerByteLength } = checkHeader(path, magic, head, size)
  const rowBytes = rowLength(shape)
  return {
    shape,
    rows: {
      rowBytes,
      gather(indices, out) {
        const fd = openSync(path, 'r')
        try {
          const now = fstatSync(fd).size
          if (now !== size) throw new DistError('E_DATA', `${path}: changed while in use: it had ${size} bytes when opened, now ${now}.`, { file: path, expected: size, got: now })
          for (let k = 0; k < indices.length; k++) {
            const got = readSync(fd, out, k * rowBytes, rowBytes, headerByteLength + indices[k]! * rowBytes)
            if (got !== rowBytes) throw new DistError('E_DATA', `${path}: row ${indices[k]} is short: read ${got} of ${rowBytes} bytes.`, { file: path, expected: rowBytes, got })
          }
        } finally {
          closeSync(fd)
        }
      },
    },
  }
}

/** Bytes of one row: the product of the dimensions after the first (1 for a file of labels). */
function rowLength(shape: readonly number[]): number {
  return shape.slice(1).reduce((product, dim) => product * dim, 1)
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`
}
