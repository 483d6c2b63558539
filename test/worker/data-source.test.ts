/** What `--serve-data` loads on the coordinator's machine: a task's splits as stored rows, or a ConfigError before any worker joins. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, test } from 'vitest'
import { loadDataSource } from '@ringtrain/worker'
import { writeServedData } from '../integration/fixtures/served-data-task.ts'

const dir = mkdtempSync(join(tmpdir(), 'ringtrain-data-source-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

test("describes the task's splits and reads their stored rows", async () => {
  writeServedData(dir)
  process.env['RINGTRAIN_TEST_DATA_DIR'] = dir
  const source = await loadDataSource('test/integration/fixtures/served-data-task.ts')
  expect(source.describe('train')).toEqual({ length: 90, rowBytes: 17, inputLayout: { shape: [16], encoding: expect.objectContaining({ type: 'lookup' }) }, targetLayout: { shape: [3], encoding: { type: 'oneHot', classes: 3 } } })
  expect(source.describe('eval')).toMatchObject({ length: 30, rowBytes: 4 * 16 + 4 * 3, inputLayout: { encoding: { type: 'float32' } } })
  const rows = source.read('train', Uint32Array.from([2, 0]))
  expect([rows.inputs.byteLength, Array.from(rows.targets)]).toEqual([32, [(2 * 7) % 3, 0]])
})

test('a data set written by hand, without stored samples, cannot be served: a ConfigError naming the task and the split', async () => {
  await expect(loadDataSource('test/worker/fixtures/task-linear.ts')).rejects.toMatchObject({
    code: 'E_CONFIG',
    message: expect.stringMatching(/^--serve-data: task '.*task-linear\.ts' data\.train\(\) returned a data set without stored samples, which cannot be served/),
  })
})
