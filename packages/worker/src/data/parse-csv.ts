import { DistError } from '@ringtrain/core'

/** One record of a CSV file and the 1-based line it starts on. */
export interface CsvRecord {
  line: number
  fields: string[]
}

/**
 * Splits CSV text into records (RFC 4180): fields may be quoted with `"`, a quoted field may
 * hold the delimiter, line breaks and `""` (one quote); lines end in LF or CRLF; a leading
 * byte-order mark and blank lines (a trailing one included) are skipped.
 *
 * @throws DistError (`E_DATA`) naming the file and line of a quote that is never closed, or
 *   of text after a closing quote.
 */
export function parseCsv(text: string, file: string, delimiter = ','): CsvRecord[] {
  const records: CsvRecord[] = []
  let fields: string[] = []
  let field = ''
  let line = 1
  let recordLine = 1
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0

  const endRecord = () => {
    fields.push(field)
    const blank = fields.length === 1 && fields[0] === ''
    if (!blank) records.push({ line: recordLine, fields })
    fields = []
    field = ''
  }

  while (i < text.length) {
    const char = text[i]!
    if (char === '"' && field === '') {
      const openedOn = line
      i++
      for (;;) {
        if (i >= text.length) {
          throw new DistError('E_DATA', `${file} line ${openedOn}: a quoted field is never closed.`, { file, line: openedOn })
        }
        const c = text[i]!
        if (c === '"') {
          if (text[i + 1] === '"') {
            field += '"'
            i += 2
            continue
          }
          i++
          break
        }
        if (c === '\n') line++
        field += c
        i++
      }
      const next = text[i]
      if (next !== undefined && next !== delimiter && next !== '\n' && next !== '\r') {
        throw new DistError('E_DATA', `${file} line ${line}: expected a delimiter or end of line after a closing quote, got '${next}'.`, {
          file,
          line,
          expected: delimiter,
          got: next,
        })
      }
      continue
    }
    if (char === delimiter) {
      fields.push(field)
      field = ''
    } else if (char === '\r' && text[i + 1] === '\n') {
      i++
      continue
    } else if (char === '\n') {
      endRecord()
      line++
      recordLine = line
    } else {
      field += char
    }
    i++
  }
  if (field !== '' || fields.length > 0) endRecord()
  return records
}
