import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { csvDataset, jsonLinesDataset, tf, type Dataset } from '@ringtrain/worker'

let dir: string
beforeAll(async () => {
  await tf.setBackend('cpu')
  dir = await mkdtemp(join(tmpdir(), 'ringtrain-data-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, text)
  return path
}

function all(dataset: Dataset) {
  const { x, y } = dataset.batch(Array.from({ length: dataset.length }, (_, i) => i))
  const single = x as ReturnType<typeof tf.tensor>
  const out = { x: Array.from(single.dataSync()), y: Array.from(y.dataSync()) }
  tf.dispose([single, y])
  return out
}

async function dataError(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise
  } catch (error) {
    return { code: (error as { code: string }).code, message: (error as Error).message }
  }
  throw new Error('expected the loader to reject')
}

describe('csvDataset', () => {
  test('reads quoted fields with commas and quotes, CRLF and a blank trailing line', async () => {
    const path = await file(
      'quoted.csv',
      '\ufeffx1,"x2",label,"note, free text"\r\n1,2.5,0,"a, ""b"""\r\n-3,"4e-1",2,"multi\r\nline"\r\n\r\n',
    )
    const dataset = await csvDataset(path, { inputColumns: ['x1', 'x2'], targetColumns: ['label'] })
    expect(dataset.length).toBe(2)
    expect(dataset.inputShape).toEqual([2])
    expect(dataset.targetShape).toEqual([1])
    expect(all(dataset)).toEqual({ x: [1, 2.5, -3, Math.fround(0.4)], y: [0, 2] })
  })

  test('one-hot by class count or by class names; no header and another delimiter', async () => {
    const named = await file('iris.csv', 'a,species\n0.5,virginica\n1.5,setosa\n')
    const byName = await csvDataset(named, {
      inputColumns: ['a'],
      targetColumns: ['species'],
      oneHot: { column: 'species', classes: ['setosa', 'versicolor', 'virginica'] },
    })
    expect(byName.targetShape).toEqual([3])
    expect(all(byName).y).toEqual([0, 0, 1, 1, 0, 0])
    const bare = await file('bare.tsv', '1\t2\t1\n3\t4\t0\n')
    const byCount = await csvDataset(bare, {
      header: false,
      delimiter: '\t',
      inputColumns: [0, 1],
      targetColumns: [2],
      oneHot: { column: 2, classes: 2 },
    })
    expect(all(byCount)).toEqual({ x: [1, 2, 3, 4], y: [0, 1, 1, 0] })
  })

  test('a bad cell names the file, line, column, expected and got', async () => {
    const lines = ['x1,x2,y', ...Array.from({ length: 15 }, (_, i) => `${i},${i},0`), '1,abc,0']
    const path = await file('train.csv', lines.join('\n'))
    const error = await dataError(csvDataset(path, { inputColumns: ['x1', 'x2'], targetColumns: ['y'] }))
    expect(error).toEqual({ code: 'E_DATA', message: `${path} line 17, column 'x2': expected a number, got 'abc'` })
  })

  test('other data errors: field count, bad class, empty cell, unclosed quote', async () => {
    const options = { inputColumns: ['x'], targetColumns: ['y'], oneHot: { column: 'y', classes: 3 } }
    const short = await file('short.csv', 'x,y\n1,2\n3\n')
    expect(await dataError(csvDataset(short, options))).toEqual({ code: 'E_DATA', message: `${short} line 3: expected 2 fields, got 1` })
    const badClass = await file('class.csv', 'x,y\n1,3\n')
    expect((await dataError(csvDataset(badClass, options))).message).toBe(
      `${badClass} line 2, column 'y': expected an integer class in [0, 3), got '3'`,
    )
    const empty = await file('empty.csv', 'x,y\n,1\n')
    expect((await dataError(csvDataset(empty, options))).message).toBe(`${empty} line 2, column 'x': expected a number, got ''`)
    const unclosed = await file('unclosed.csv', 'x,y\n1,2\n"3,1\n')
    expect((await dataError(csvDataset(unclosed, options))).message).toBe(`${unclosed} line 3: a quoted field is never closed.`)
  })

  test('an unknown column or a one-hot column outside the targets is a ConfigError', async () => {
    const path = await file('cols.csv', 'x,y\n1,2\n')
    expect(await dataError(csvDataset(path, { inputColumns: ['z'], targetColumns: ['y'] }))).toEqual({
      code: 'E_CONFIG',
      message: `csvDataset: column 'z' is not in ${path}; its header names 'x', 'y'.`,
    })
    expect(
      (await dataError(csvDataset(path, { inputColumns: ['x'], targetColumns: ['y'], oneHot: { column: 'x', classes: 2 } })))
        .message,
    ).toBe("csvDataset: oneHot.column 'x' must be one of targetColumns.")
  })
})

describe('jsonLinesDataset', () => {
  test('reads number and array fields, concatenated in order, skipping blank lines', async () => {
    const path = await file(
      'train.jsonl',
      '{"pixels":[0.1,0.2],"bias":1,"label":2}\r\n\n{"pixels":[0.3,0.4],"bias":0,"label":0}\n',
    )
    const dataset = await jsonLinesDataset(path, {
      input: ['pixels', 'bias'],
      target: 'label',
      oneHot: { field: 'label', classes: 3 },
    })
    expect(dataset.length).toBe(2)
    expect(dataset.inputShape).toEqual([3])
    expect(dataset.targetShape).toEqual([3])
    expect(all(dataset)).toEqual({ x: [0.1, 0.2, 1, 0.3, 0.4, 0].map(Math.fround), y: [0, 0, 1, 1, 0, 0] })
  })

  test('a bad value names the file, line, field, expected and got', async () => {
    const path = await file('bad.jsonl', '{"x":1,"y":0}\n{"x":2,"y":1}\n{"x":"abc","y":0}\n')
    expect(await dataError(jsonLinesDataset(path, { input: 'x', target: 'y' }))).toEqual({
      code: 'E_DATA',
      message: `${path} line 3, field 'x': expected a number, got "abc"`,
    })
    const ragged = await file('ragged.jsonl', '{"x":[1,2],"y":0}\n{"x":[1],"y":0}\n')
    expect((await dataError(jsonLinesDataset(ragged, { input: 'x', target: 'y' }))).message).toBe(
      `${ragged} line 2, field 'x': expected an array of 2 numbers, got [1]`,
    )
    const missing = await file('missing.jsonl', '{"x":1}\n')
    expect((await dataError(jsonLinesDataset(missing, { input: 'x', target: 'y' }))).message).toBe(
      `${missing} line 1, field 'y': expected a number, got nothing (no such field)`,
    )
    const notJson = await file('notjson.jsonl', '{"x":1,"y":0}\nx=1\n')
    expect((await dataError(jsonLinesDataset(notJson, { input: 'x', target: 'y' }))).message).toBe(
      `${notJson} line 2: expected a JSON object, got x=1`,
    )
  })
})
