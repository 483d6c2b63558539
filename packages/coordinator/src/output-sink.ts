/**
 * Where rank 0's checkpoints and final model land when the coordinator's --out is not on
 * rank 0's machine: rank 0 streams them over its authenticated control connection
 * (OutputPart, OutputCommit) and this sink writes them with the same commit protocol as a
 * local write (core/checkpoint/commit.ts): parts into a temporary directory, every file
 * checked against its size and fsynced, the directory renamed into place, a checkpoint's
 * manifest.json last. The answer (OutputAck) names the committed path or the error; older
 * checkpoints are pruned only after a newer one committed.
 *
 * The coordinator also writes `.ringtrain-out` with a token of this run into --out: a rank 0
 * that reads the same token there shares the folder and writes itself.
 */
import { randomBytes } from 'node:crypto'
import { open, readFile, rm, writeFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import {
  DistError, MANIFEST_FILE, parseManifest, MessageType, OUTPUT_PART_BYTES, OUT_TOKEN_FILE, OutputWriteError, commitCheckpointDir, controlMessage, readManifest, type ControlMessage, outputWriteError, pruneCheckpoints, swapDirectory, temporaryCheckpointDir, temporarySibling,
  type OutputCommit, type OutputPart, type OutputTarget, type WireError,
} from '@ringtrain/core'


/** Writes a fresh token into `outDir/.ringtrain-out` and returns it (for `JobConfig.outToken`). */
export async function writeOutToken(outDir: string): Promise<string> {
  const token = randomBytes(16).toString('hex')
  await writeFile(join(outDir, OUT_TOKEN_FILE), `${token}\n`)
  return token
}

interface Pending {
  target: OutputTarget
  step: number
  dir: string
  files: Map<string, FileHandle>
  failure?: OutputWriteError
}

export class OutputSink {
  private pending: Pending | undefined
  /** Parts and commits are applied in arrival order, one at a time. */
  private queue: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly outDir: string,
    private readonly keepCheckpoints: number,
    private readonly log: (line: string) => void,
  ) {}

  /** Queues a part; a failure is remembered and reported by the commit. */
  part(message: OutputPart): void {
    this.queue = this.queue.then(() => this.writePart(message)).catch(() => undefined)
  }

  /** Queues the commit of everything sent for (target, step); resolves with the answer for rank 0. */
  commit(message: OutputCommit): Promise<{ path?: string; error?: WireError }> {
    const result = this.queue.then(() => this.commitNow(message))
    this.queue = result.catch(() => undefined)
    return result
  }

  /** Removes a temporary directory left by an unfinished stream. */
  async close(): Promise<void> {
    await this.queue
    await this.discard()
  }

  private async writePart(message: OutputPart): Promise<void> {
    if (this.pending !== undefined && (this.pending.target !== message.target || this.pending.step !== message.step)) await this.discard()
    if (this.pending === undefined) {
      const dir = message.target === 'checkpoint' ? await temporaryCheckpointDir(this.outDir, message.step) : await temporarySibling(join(this.outDir, 'model'))
      this.pending = { target: message.target, step: message.step, dir, files: new Map() }
    }
    const pending = this.pending
    if (pending.failure !== undefined) return
    const name = safeName(message.file)
    const path = join(pending.dir, name)
    try {
      let file = pending.files.get(name)
      if (file === undefined) {
        file = await open(path, 'w')
        pending.files.set(name, file)
      }
      await file.write(message.data, 0, message.data.byteLength, message.offset)
    } catch (error) {
      pending.failure = asOutputError(error, path, `${describe(message.target, message.step)} (streamed from rank 0)`)
    }
  }

  private async commitNow(message: OutputCommit): Promise<{ path?: string; error?: WireError }> {
    const pending = this.pending
    const what = describe(message.target, message.step)
    if (pending === undefined || pending.target !== message.target || pending.step !== message.step) {
      return { error: new OutputWriteError(`the coordinator got the commit of ${what} without its parts.`, { expected: 'its parts first', got: 'a commit alone' }).toWire() }
    }
    let path = pending.dir
    try {
      if (pending.failure !== undefined) throw pending.failure
      if (message.target === 'checkpoint') {
        // The manifest that commits it must describe exactly the files sent.
        const manifest = parseManifest(`the manifest of ${what}`, message.manifest ?? '')
        const described = manifest.files.map((f) => `${f.name}:${f.bytes}`).sort().join(',')
        const sent = message.files.map((f, i) => `${f}:${message.sizes[i]}`).sort().join(',')
        if (manifest.step !== message.step || described !== sent) throw new OutputWriteError(`${what}: its manifest (step ${manifest.step}, ${described}) does not describe the files sent (${sent}).`, { expected: sent, got: described })
      }
      for (const [i, name] of message.files.entries()) {
        path = join(pending.dir, safeName(name))
        const file = pending.files.get(safeName(name))
        const expected = Number(message.sizes[i])
        const size = file === undefined ? (expected === 0 ? 0 : -1) : (await file.stat()).size
        if (file === undefined && expected === 0) await writeFile(path, new Uint8Array(0))
        if (size !== expected) throw new OutputWriteError(`${what}: ${path} holds ${size < 0 ? 'nothing' : `${size} bytes`} after the stream; rank 0 sent ${expected}.`, { path, expected, got: size })
        await file?.sync()
      }
      await this.closeFiles(pending)
      let committed: string
      if (message.target === 'checkpoint') {
        path = join(this.outDir, 'checkpoints')
        committed = await commitCheckpointDir(this.outDir, message.step, pending.dir, message.manifest ?? '')
        const removed = await pruneCheckpoints(this.outDir, this.keepCheckpoints)
        this.log(`committed ${committed}, streamed from rank 0${removed.length > 0 ? `; removed ${removed.length} older checkpoint(s)` : ''}.`)
      } else {
        committed = join(this.outDir, 'model')
        path = committed
        await swapDirectory(pending.dir, committed)
        this.log(`wrote the trained model to ${committed}, streamed from rank 0.`)
      }
      this.pending = undefined
      return { path: committed }
    } catch (error) {
      await this.discard()
      const failure = error instanceof OutputWriteError ? error : asOutputError(error, path, what)
      this.log(failure.message)
      return { error: failure.toWire() }
    }
  }

  private async closeFiles(pending: Pending): Promise<void> {
    for (const file of pending.files.values()) await file.close().catch(() => undefined)
    pending.files.clear()
  }

  private async discard(): Promise<void> {
    const pending = this.pending
    this.pending = undefined
    if (pending === undefined) return
    await this.closeFiles(pending)
    await rm(pending.dir, { recursive: true, force: true }).catch(() => undefined)
  }
}

/**
 * Sends the checkpoint at `dir` (a resumed job's, in this --out) to rank 0, which does not
 * see this folder: its files in OutputParts, then an OutputCommit that carries the manifest;
 * a checkpoint that cannot be read is answered with an OutputAck naming the error.
 */
export async function sendCheckpoint(jobId: string, dir: string, round: number, send: (message: ControlMessage) => Promise<void>): Promise<void> {
  let step = 0
  try {
    const manifest = await readManifest(dir)
    step = manifest.step
    const text = await readFile(join(dir, MANIFEST_FILE), 'utf8')
    for (const file of manifest.files) {
      const bytes = await readFile(join(dir, file.name))
      for (let offset = 0; offset < bytes.byteLength; offset += OUTPUT_PART_BYTES) {
        await send(controlMessage(MessageType.OutputPart, jobId, { rank: 0, round, target: 'checkpoint', step, file: file.name, offset, data: bytes.subarray(offset, Math.min(bytes.byteLength, offset + OUTPUT_PART_BYTES)) }))
      }
    }
    await send(controlMessage(MessageType.OutputCommit, jobId, { rank: 0, round, target: 'checkpoint', step, files: manifest.files.map((f) => f.name), sizes: manifest.files.map((f) => String(f.bytes)), manifest: text }))
  } catch (error) {
    const wire = error instanceof DistError ? error.toWire() : new OutputWriteError(`the coordinator could not read checkpoint ${dir}: ${(error as Error).message}`, { path: dir }).toWire()
    await send(controlMessage(MessageType.OutputAck, jobId, { target: 'checkpoint', step, error: wire }))
  }
}

function describe(target: OutputTarget, step: number): string {
  return target === 'checkpoint' ? `the checkpoint of step ${step}` : 'the trained model'
}

/** A file name from rank 0, kept inside the output directory. */
function safeName(name: string): string {
  const base = name.replace(/[/\\]/g, '_')
  return base === '' || base === '.' || base === '..' ? '_' : base
}

function asOutputError(error: unknown, path: string, what: string): OutputWriteError {
  const wrapped = outputWriteError(error, path, what)
  return wrapped instanceof OutputWriteError ? wrapped : new OutputWriteError(`could not write ${what} to ${path}: ${(error as Error).message}`, { path, got: String(error) })
}

