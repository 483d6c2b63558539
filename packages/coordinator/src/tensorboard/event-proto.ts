/**
 * The few protobuf messages of a TensorBoard event file, encoded by hand (tensorflow/core/
 * util/event.proto and framework/summary.proto):
 *
 *   Event   { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3; Summary summary = 5; } }
 *   Summary { repeated Value value = 1; }
 *   Value   { string tag = 1; float simple_value = 2; }
 */
const WIRE_VARINT = 0
const WIRE_64BIT = 1
const WIRE_LENGTH = 2
const WIRE_32BIT = 5

class Writer {
  private readonly parts: Uint8Array[] = []

  key(field: number, wire: number): this {
    return this.varint(BigInt((field << 3) | wire))
  }

  varint(value: bigint): this {
    const bytes: number[] = []
    let v = BigInt.asUintN(64, value)
    do {
      let byte = Number(v & 0x7fn)
      v >>= 7n
      if (v !== 0n) byte |= 0x80
      bytes.push(byte)
    } while (v !== 0n)
    this.parts.push(Uint8Array.from(bytes))
    return this
  }

  double(field: number, value: number): this {
    const bytes = new Uint8Array(8)
    new DataView(bytes.buffer).setFloat64(0, value, true)
    this.key(field, WIRE_64BIT).parts.push(bytes)
    return this
  }

  float(field: number, value: number): this {
    const bytes = new Uint8Array(4)
    new DataView(bytes.buffer).setFloat32(0, value, true)
    this.key(field, WIRE_32BIT).parts.push(bytes)
    return this
  }

  int64(field: number, value: number): this {
    return this.key(field, WIRE_VARINT).varint(BigInt(value))
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, WIRE_LENGTH).varint(BigInt(value.length)).parts.push(value)
    return this
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value))
  }

  finish(): Uint8Array {
    return Buffer.concat(this.parts)
  }
}

/** The first event of every file: its format version. */
export function fileVersionEvent(wallTimeSeconds: number): Uint8Array {
  return new Writer().double(1, wallTimeSeconds).string(3, 'brain.Event:2').finish()
}

/** One event holding scalar summaries (tag → value) at `step`. */
export function scalarsEvent(wallTimeSeconds: number, step: number, scalars: Readonly<Record<string, number>>): Uint8Array {
  const summary = new Writer()
  for (const [tag, value] of Object.entries(scalars)) summary.bytes(1, new Writer().string(1, tag).float(2, value).finish())
  return new Writer().double(1, wallTimeSeconds).int64(2, step).bytes(5, summary.finish()).finish()
}
