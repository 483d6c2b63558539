import { readFile } from 'node:fs/promises'
import { ConfigError, DistError } from '@ringtrain/core'
import { cellError, classCount, classIndex, describeClasses } from './cells.js'
import type { OneHotClasses } from './cells.js'
import type { Dataset } from './dataset.js'
import { denseDataset } from './dense-dataset.js'

/** Arguments of {@link jsonLinesDataset}. */
export interface JsonLinesDatasetOptions {
  /** Field or fields that make the input. A field holds a number or an array of numbers. */
  input: string | readonly string[]
  /** Field or fields that make the target. */
  target: string | readonly string[]
  /** Encode this target field one-hot: a count of integer classes, or the class names. */
  oneHot?: { field: string; classes: OneHotClasses }
}

interface Field {
  name: string
  /** Values per record: 1 for a number, n for an array; fixed by the first record. */
  width?: number
  classes?: OneHotClasses
}

/**
 * Reads a JSON Lines file (one JSON object per line; blank lines skipped) into a
 * {@link Dataset}. A field holds a number, or an array of numbers whose length the first
 * record fixes; inputs of several fields are concatenated in the order given.
 *
 * @throws ConfigError (`E_CONFIG`) when the one-hot field is not a target field.
 * @throws DistError (`E_DATA`) naming file, line, field, expected and got for a bad value
 *   (`data/train.jsonl line 3, field 'x': expected a number, got "abc"`) or a line that is
 *   not a JSON object.
 */
export async function jsonLinesDataset(path: string, options: JsonLinesDatasetOptions): Promise<Dataset> {
  const inputs: Field[] = [options.input].flat().map((name) => ({ name }))
  const targets: Field[] = [options.target].flat().map((name) => ({ name }))
  if (options.oneHot) {
    const { field: name, classes } = options.oneHot
    const target = targets.find((field) => field.name === name)
    if (!target) {
      throw new ConfigError(`jsonLinesDataset: oneHot.field '${name}' must be one of the target fields.`, {
        argument: 'oneHot.field',
        got: name,
      })
    }
    Object.assign(target, { classes, width: classCount(classes) })
  }
  const records = parseLines(path, await readFile(path, 'utf8'))
  const x: number[] = []
  const y: number[] = []
  for (const { line, object } of records) {
    encodeFields(path, line, object, inputs, x)
    encodeFields(path, line, object, targets, y)
  }
  const width = (fields: Field[]) => fields.reduce((sum, field) => sum + (field.width ?? 0), 0)
  return denseDataset(
    { inputs: Float32Array.from(x), inputShape: [width(inputs)], targets: Float32Array.from(y), targetShape: [width(targets)] },
    path,
  )
}

function parseLines(file: string, text: string): { line: number; object: Record<string, unknown> }[] {
  const records: { line: number; object: Record<string, unknown> }[] = []
  text.split('\n').forEach((raw, i) => {
    const source = raw.trim()
    if (source === '') return
    let object: unknown
    try {
      object = JSON.parse(source)
    } catch (cause) {
      throw new DistError('E_DATA', `${file} line ${i + 1}: expected a JSON object, got ${preview(source)}`, { file, line: i + 1 }, { cause })
    }
    if (typeof object !== 'object' || object === null || Array.isArray(object)) {
      throw new DistError('E_DATA', `${file} line ${i + 1}: expected a JSON object, got ${preview(source)}`, { file, line: i + 1 })
    }
    records.push({ line: i + 1, object: object as Record<string, unknown> })
  })
  return records
}

function encodeFields(file: string, line: number, object: Record<string, unknown>, fields: Field[], out: number[]): void {
  for (const field of fields) {
    const value = object[field.name]
    const got = value === undefined ? 'nothing (no such field)' : preview(JSON.stringify(value))
    const where = `field '${field.name}'`
    if (field.classes !== undefined) {
      const index = classIndex(value, field.classes)
      if (index === undefined) throw cellError(file, line, where, describeClasses(field.classes), got)
      for (let k = 0; k < classCount(field.classes); k++) out.push(k === index ? 1 : 0)
      continue
    }
    const values = Array.isArray(value) ? value : [value]
    field.width ??= Array.isArray(value) ? value.length : 1
    const expected = field.width === 1 && !Array.isArray(value) ? 'a number' : `an array of ${field.width} numbers`
    if (values.length !== field.width || !values.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw cellError(file, line, where, expected, got)
    }
    for (const v of values) out.push(v as number)
  }
}

function preview(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text
}
