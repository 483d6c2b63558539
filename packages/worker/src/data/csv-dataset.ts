import { readFile } from 'node:fs/promises'
import { ConfigError, DistError } from '@ringtrain/core'
import { cellError, classCount, classIndex, describeClasses, parseNumber } from './cells.js'
import type { OneHotClasses } from './cells.js'
import type { Dataset } from './dataset.js'
import { denseDataset } from './dense-dataset.js'
import { parseCsv } from './parse-csv.js'
import type { CsvRecord } from './parse-csv.js'

/** A column by header name, or by 0-based position. */
export type CsvColumn = string | number

/** Arguments of {@link csvDataset}. */
export interface CsvDatasetOptions {
  /** Columns that make the input, in order: input shape `[inputColumns.length]`. */
  inputColumns: readonly CsvColumn[]
  /** Columns that make the target, in order; a one-hot column counts as `classes` values. */
  targetColumns: readonly CsvColumn[]
  /** The first record names the columns (default true). Without it, columns are positions. */
  header?: boolean
  /** Field delimiter (default `,`). */
  delimiter?: string
  /** Encode this target column one-hot: a count of integer classes, or the class names. */
  oneHot?: { column: CsvColumn; classes: OneHotClasses }
}

interface ResolvedColumn {
  label: string
  position: number
  classes?: OneHotClasses
}

/**
 * Reads a CSV file of numbers into a {@link Dataset}. The file is parsed once; samples are
 * kept as `Float32Array`s and tensors are made per batch.
 *
 * @throws ConfigError (`E_CONFIG`) when a column is not in the file, or the one-hot column is
 *   not a target column.
 * @throws DistError (`E_DATA`) naming file, line, column, expected and got for a bad cell
 *   (`data/train.csv line 17, column 'x2': expected a number, got 'abc'`) or a record with
 *   the wrong number of fields.
 */
export async function csvDataset(path: string, options: CsvDatasetOptions): Promise<Dataset> {
  const { header = true, delimiter = ',', oneHot } = options
  const records = parseCsv(await readFile(path, 'utf8'), path, delimiter)
  const names = header ? (records.shift()?.fields.map((name) => name.trim()) ?? []) : undefined
  const width = names?.length ?? records[0]?.fields.length ?? 0
  const resolve = (column: CsvColumn) => resolveColumn(path, column, names, width)
  const inputs = options.inputColumns.map(resolve)
  const targets = options.targetColumns.map(resolve)
  if (oneHot) {
    const column = resolve(oneHot.column)
    const target = targets.find((candidate) => candidate.position === column.position)
    if (!target) {
      throw new ConfigError(`csvDataset: oneHot.column '${column.label}' must be one of targetColumns.`, {
        argument: 'oneHot.column',
        got: column.label,
      })
    }
    target.classes = oneHot.classes
  }
  const inputLength = inputs.length
  const targetLength = targets.reduce((sum, column) => sum + (column.classes ? classCount(column.classes) : 1), 0)
  const x = new Float32Array(records.length * inputLength)
  const y = new Float32Array(records.length * targetLength)
  records.forEach((record, i) => {
    if (record.fields.length !== width) {
      throw new DistError('E_DATA', `${path} line ${record.line}: expected ${width} fields, got ${record.fields.length}`, {
        file: path,
        line: record.line,
        expected: width,
        got: record.fields.length,
      })
    }
    encodeRecord(path, record, inputs, x, i * inputLength)
    encodeRecord(path, record, targets, y, i * targetLength)
  })
  return denseDataset({ inputs: x, inputShape: [inputLength], targets: y, targetShape: [targetLength] }, path)
}

function encodeRecord(file: string, record: CsvRecord, columns: ResolvedColumn[], out: Float32Array, offset: number): void {
  for (const column of columns) {
    const text = record.fields[column.position]!
    if (column.classes !== undefined) {
      const index = classIndex(text, column.classes)
      if (index === undefined) {
        throw cellError(file, record.line, `column '${column.label}'`, describeClasses(column.classes), `'${text}'`)
      }
      out[offset + index] = 1
      offset += classCount(column.classes)
    } else {
      const value = parseNumber(text)
      if (value === undefined) throw cellError(file, record.line, `column '${column.label}'`, 'a number', `'${text}'`)
      out[offset++] = value
    }
  }
}

function resolveColumn(file: string, column: CsvColumn, names: string[] | undefined, width: number): ResolvedColumn {
  if (typeof column === 'number') {
    if (!Number.isInteger(column) || column < 0 || column >= width) {
      throw new ConfigError(`csvDataset: column ${column} must be a position in [0, ${width}) of ${file}.`, {
        argument: 'column',
        expected: `0 … ${width - 1}`,
        got: column,
      })
    }
    return { label: names?.[column] ?? String(column), position: column }
  }
  const position = names?.indexOf(column) ?? -1
  if (position < 0) {
    const known = names ? `; its header names ${names.map((name) => `'${name}'`).join(', ')}` : ' (header: false, so name columns by position)'
    throw new ConfigError(`csvDataset: column '${column}' is not in ${file}${known}.`, { argument: 'column', got: column })
  }
  return { label: column, position }
}
