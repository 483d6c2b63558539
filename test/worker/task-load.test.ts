import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, onTestFinished, test } from 'vitest'
import { tf } from '@ringtrain/worker'
import { loadTask, Replica } from '@ringtrain/worker/unstable-internals-do-not-import'

const fixtures = 'test/worker/fixtures'

beforeAll(async () => {
  await tf.setBackend('cpu')
})

async function errorOf(path: string): Promise<{ name: string; code: string; message: string }> {
  return loadTask(path).then(
    () => {
      throw new Error(`loadTask accepted ${path}`)
    },
    (error: unknown) => error as never,
  )
}

describe('loadTask', () => {
  test('loads a .ts task module, named by its file, and builds a replica from it', async () => {
    const task = await loadTask(`${fixtures}/task-linear.ts`)
    expect(task.name).toBe(`${fixtures}/task-linear.ts`)
    expect(task.batchSize).toBe(8)
    expect(task.optimizer).toEqual({ name: 'momentum', momentum: 0.5 })
    const replica = await Replica.create(task)
    expect(replica.layout.entries.map((e) => e.name)).toEqual(['linear/kernel', 'linear/bias'])
    replica.dispose()
  })

  test('loads a .js task module with a custom model and a custom loss', async () => {
    const task = await loadTask(`${fixtures}/task-plain.js`)
    expect(task.name).toBe('plain-js')
    const replica = await Replica.create(task)
    const { loss, gradients } = replica.computeGradients({ x: tf.tensor2d([[1, 2]]), y: tf.tensor2d([[1]]) })
    expect(loss).toBe(1)
    expect(Array.from(gradients)).toEqual([-1, -2])
    replica.dispose()
  })

  test('rejects a module whose default export did not come from defineTask, naming the file', async () => {
    const error = await errorOf(`${fixtures}/task-not-defined.js`)
    expect(error.code).toBe('E_CONFIG')
    expect(error.message).toBe(
      `task '${fixtures}/task-not-defined.js' default-exports an object that was not made by defineTask; a task module must \`export default defineTask({ ... })\`.`,
    )
  })

  test('passes through the ConfigError of an invalid spec, named by its file', async () => {
    const error = await errorOf(`${fixtures}/task-bad-optimizer.ts`)
    expect(error.name).toBe('ConfigError')
    expect(error.message).toBe(
      `task '${fixtures}/task-bad-optimizer.ts': optimizer 'adamw' is not one of sgd, momentum, nesterov, adam, adamax, adagrad, adadelta, rmsprop.`,
    )
  })

  // The .mjs case, which Node's own parser reports, is in test/cli/task-errors.test.ts: this
  // runner parses .mjs files itself.
  test('a syntax error in a TypeScript task names the file, line and column, the message and the line itself', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringtrain-bad-task-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const ts = join(dir, 'broken.mts')
    writeFileSync(ts, "import { defineTask } from '@ringtrain/worker'\nexport default defineTask({\n  model: () => ,\n})\n")
    expect((await errorOf(ts)).message).toBe(`task '${ts}' could not be imported: ${ts}:3:15: Unexpected "," (line 3: model: () => ,)`)
  })

  test('names a file that does not exist', async () => {
    const error = await errorOf(`${fixtures}/no-such-task.ts`)
    expect(error.code).toBe('E_CONFIG')
    expect(error.message).toMatch(new RegExp(`^task '${fixtures}/no-such-task.ts' could not be imported: `))
  })
})
