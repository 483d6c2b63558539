/** The coordinator's side of streamed outputs (output-sink.ts), with real files. */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, test } from 'vitest'
import { OutputSink } from '@ringtrain/coordinator/unstable-internals-do-not-import'
import { CHECKPOINT_FORMAT, MessageType, controlMessage, type OutputTarget } from '@ringtrain/core'

const dirs: string[] = []
afterEach(() => { for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true }) })
function outDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringtrain-sink-'))
  dirs.push(dir)
  return dir
}

const part = (target: OutputTarget, step: number, file: string, offset: number, text: string) =>
  controlMessage(MessageType.OutputPart, 'job', { rank: 0, round: 0, target, step, file, offset, data: new TextEncoder().encode(text) })
const commit = (target: OutputTarget, step: number, files: [string, number][], manifest?: string) =>
  controlMessage(MessageType.OutputCommit, 'job', { rank: 0, round: 0, target, step, files: files.map(([f]) => f), sizes: files.map(([, n]) => String(n)), ...(manifest !== undefined ? { manifest } : {}) })

/** A manifest readManifest accepts (pruning keeps only complete checkpoints). */
const manifestOf = (step: number, bytes = 10) => JSON.stringify({
  format: CHECKPOINT_FORMAT, step, seed: 1, worldSize: 2, position: { epoch: 0, startSample: 0, shardWorldSize: 2, batchSize: 4, batch: step },
  weights: [], files: [{ name: 'weights.bin', bytes }], optimizer: { name: 'sgd', state: [] },
})

describe('OutputSink', () => {
  test('parts at their offsets, in any order, commit into checkpoints/step-N with the manifest last; older checkpoints are pruned', async () => {
    const out = outDir()
    const sink = new OutputSink(out, 1, () => {})
    for (const step of [3, 6]) {
      sink.part(part('checkpoint', step, 'weights.bin', 5, 'world'))
      sink.part(part('checkpoint', step, 'weights.bin', 0, 'hello'))
      const answer = await sink.commit(commit('checkpoint', step, [['weights.bin', 10]], manifestOf(step)))
      expect(answer).toEqual({ path: join(out, 'checkpoints', `step-000000${step}`) })
    }
    expect(readdirSync(join(out, 'checkpoints'))).toEqual(['step-0000006'])
    expect(readFileSync(join(out, 'checkpoints', 'step-0000006', 'weights.bin'), 'utf8')).toBe('helloworld')
    expect(readFileSync(join(out, 'checkpoints', 'step-0000006', 'manifest.json'), 'utf8')).toBe(manifestOf(6))
  })

  test('a file shorter than rank 0 says is refused with an OutputWriteError, and nothing half-written stays', async () => {
    const out = outDir()
    const sink = new OutputSink(out, 3, () => {})
    sink.part(part('checkpoint', 4, 'weights.bin', 0, 'abc'))
    const answer = await sink.commit(commit('checkpoint', 4, [['weights.bin', 8]], manifestOf(4, 8)))
    expect(answer.error).toMatchObject({ name: 'OutputWriteError', code: 'E_OUTPUT', context: { expected: 8, got: 3 } })
    expect(answer.error?.message).toMatch(/the checkpoint of step 4: \S+weights\.bin holds 3 bytes after the stream; rank 0 sent 8\./)
    expect(readdirSync(join(out, 'checkpoints'))).toEqual([])
  })

  test('a manifest that names a file outside the checkpoint, or other files than were sent, is refused', async () => {
    const out = outDir()
    const sink = new OutputSink(out, 3, () => {})
    sink.part(part('checkpoint', 5, 'weights.bin', 0, 'abcdefghij'))
    const escaping = manifestOf(5).replace('"weights.bin"', '"../../etc/passwd"')
    expect((await sink.commit(commit('checkpoint', 5, [['weights.bin', 10]], escaping))).error?.message).toMatch(/files must be plain names in the checkpoint directory/)
    sink.part(part('checkpoint', 5, 'weights.bin', 0, 'abcdefghij'))
    expect((await sink.commit(commit('checkpoint', 5, [['weights.bin', 10]], manifestOf(5, 9)))).error?.message).toMatch(/does not describe the files sent/)
    expect(readdirSync(join(out, 'checkpoints'))).toEqual([])
  })

  test('a commit without its parts is refused; a model replaces the previous one whole', async () => {
    const out = outDir()
    const sink = new OutputSink(out, 3, () => {})
    expect((await sink.commit(commit('model', 9, [['model.json', 2]]))).error).toMatchObject({ code: 'E_OUTPUT' })
    for (const text of ['{}', '[]']) {
      sink.part(part('model', 9, 'model.json', 0, text))
      expect(await sink.commit(commit('model', 9, [['model.json', 2]]))).toEqual({ path: join(out, 'model') })
    }
    expect(readFileSync(join(out, 'model', 'model.json'), 'utf8')).toBe('[]')
    expect(readdirSync(out).filter((n) => n.startsWith('.'))).toEqual([])
    expect(existsSync(join(out, 'model'))).toBe(true)
  })
})
