/**
 * How a ring all-reduce cuts a buffer: `worldSize` chunks as even as the length allows (the
 * first `length % worldSize` chunks have one element more), each cut into segments of
 * `segmentBytes`. Every chunk has at least one segment, possibly empty, so every ring step
 * exchanges a message even for tiny buffers: ranks stay in step, and a rank whose length
 * differs is caught by the byte length of what it sends (E_CHUNK_SIZE).
 */
export class RingChunks {
  private readonly base: number
  private readonly remainder: number

  constructor(
    readonly length: number,
    readonly worldSize: number,
    /** Elements (float32) per segment. */
    readonly segmentLength: number,
  ) {
    this.base = Math.floor(length / worldSize)
    this.remainder = length % worldSize
  }

  /** First element of `chunk`. */
  chunkStart(chunk: number): number {
    return chunk * this.base + Math.min(chunk, this.remainder)
  }

  chunkLength(chunk: number): number {
    return this.base + (chunk < this.remainder ? 1 : 0)
  }

  segmentCount(chunk: number): number {
    return Math.max(1, Math.ceil(this.chunkLength(chunk) / this.segmentLength))
  }

  /** Offset of `segment` within its chunk, in elements. */
  segmentOffset(segment: number): number {
    return segment * this.segmentLength
  }

  segmentLengthOf(chunk: number, segment: number): number {
    return Math.max(0, Math.min(this.segmentLength, this.chunkLength(chunk) - segment * this.segmentLength))
  }

  /** The view of `data` that holds `segment` of `chunk`. */
  segmentOf(data: Float32Array, chunk: number, segment: number): Float32Array {
    const start = this.chunkStart(chunk) + this.segmentOffset(segment)
    return data.subarray(start, start + this.segmentLengthOf(chunk, segment))
  }
}

/**
 * Received bytes as float32 without copying when they are 4-byte aligned; otherwise copied
 * into `aligned` (reused per call), whose view is valid until the next unaligned segment.
 */
export function floatView(bytes: Uint8Array, aligned: () => Float32Array): Float32Array {
  const length = bytes.byteLength >>> 2
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, length)
  const target = aligned()
  new Uint8Array(target.buffer, target.byteOffset, bytes.byteLength).set(bytes)
  return target.subarray(0, length)
}
