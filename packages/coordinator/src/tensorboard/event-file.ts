/**
 * `--tensorboard DIR`: the job's scalars as a TensorFlow event file that TensorBoard reads
 * (`tensorboard --logdir DIR`). The file is `DIR/events.out.tfevents.<seconds>.<host>.ringtrain`,
 * a sequence of TFRecords (length, masked CRC-32C of the length, an Event protobuf, masked
 * CRC-32C of the Event), starting with the file-version event.
 *
 * Records are appended in order, one write each; a record that cannot be written stops the
 * file (reported once through `onError`) but never the job: the metrics.jsonl is the record
 * of the run, this is a view of it.
 */
import { mkdirSync, type WriteStream, createWriteStream } from 'node:fs'
import { hostname } from 'node:os'
import { join, resolve } from 'node:path'
import { maskedCrc32c } from './crc32c.js'
import { fileVersionEvent, scalarsEvent } from './event-proto.js'

export class TensorBoardWriter {
  private failed = false
  private constructor(readonly path: string, private readonly stream: WriteStream, private readonly onError: (error: Error) => void) {
    stream.on('error', (error) => this.fail(error))
  }

  /** Starts an event file in `dir` (created if missing). */
  static open(dir: string, onError: (error: Error) => void): TensorBoardWriter {
    const folder = resolve(dir)
    mkdirSync(folder, { recursive: true })
    const now = Date.now() / 1000
    const path = join(folder, `events.out.tfevents.${Math.floor(now)}.${hostname()}.ringtrain`)
    const writer = new TensorBoardWriter(path, createWriteStream(path, { flags: 'wx' }), onError)
    writer.record(fileVersionEvent(now))
    return writer
  }

  /** Scalars at `step`, each tag a chart in TensorBoard ('train/loss', 'eval/accuracy'). Non-finite values are left out. */
  scalars(step: number, values: Readonly<Record<string, number | undefined>>): void {
    const finite = Object.fromEntries(Object.entries(values).filter((entry): entry is [string, number] => typeof entry[1] === 'number' && Number.isFinite(entry[1])))
    if (Object.keys(finite).length > 0) this.record(scalarsEvent(Date.now() / 1000, step, finite))
  }

  /** Flushes and closes the file. */
  close(): Promise<void> {
    return new Promise((done) => {
      if (this.stream.closed || this.stream.destroyed) return done()
      this.stream.end(() => done())
    })
  }

  private record(event: Uint8Array): void {
    if (this.failed) return
    const header = Buffer.alloc(12)
    header.writeBigUInt64LE(BigInt(event.length), 0)
    header.writeUInt32LE(maskedCrc32c(header.subarray(0, 8)), 8)
    const footer = Buffer.alloc(4)
    footer.writeUInt32LE(maskedCrc32c(event), 0)
    this.stream.write(Buffer.concat([header, event, footer]))
  }

  private fail(error: Error): void {
    if (this.failed) return
    this.failed = true
    this.onError(new Error(`could not write the TensorBoard event file ${this.path}: ${error.message}; no more scalars go there (the job goes on, metrics.jsonl has every step).`))
  }
}
