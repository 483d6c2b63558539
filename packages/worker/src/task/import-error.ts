/**
 * Where a task module failed to load, for its error message: a syntax error the TypeScript
 * transform (esbuild, through tsx) found, or one Node's own parser found in a .js/.mjs file,
 * becomes `FILE:LINE:COLUMN: MESSAGE (line LINE: SOURCE)`, so the user sees where to look.
 * Other failures keep the first line of their message.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { basename, dirname, extname, join } from 'node:path'

export function describeImportError(cause: unknown, file: string): string {
  // Duck-typed: errors from another realm (a test runner's module loader) are no `Error`s here.
  const fields = typeof cause === 'object' && cause !== null ? (cause as { message?: unknown; name?: unknown }) : {}
  const message = typeof fields.message === 'string' ? fields.message : String(cause)
  const firstLine = message.split('\n')[0] ?? ''
  const transform = /^Transform failed with \d+ errors?:\n(.+?):(\d+):(\d+): ERROR: (.+)$/m.exec(message)
  if (transform !== null) {
    const [, reported, line, column, text] = transform
    return located(realFile(reported!, file), Number(line), Number(column), text!.trim())
  }
  if (fields.name === 'SyntaxError' && /\.(m?js|cjs)$/.test(file)) {
    const where = nodeCheck(file)
    if (where !== undefined) return located(file, where.line, where.column, firstLine)
  }
  return firstLine
}

/** esbuild names a `.mts` file `.ts` in its messages: report the file that exists. */
function realFile(reported: string, imported: string): string {
  if (existsSync(reported)) return reported
  const stem = (path: string) => join(dirname(path), basename(path, extname(path)))
  return stem(reported) === stem(imported) ? imported : reported
}

function located(file: string, line: number, column: number, text: string): string {
  const source = sourceLine(file, line)
  return `${file}:${line}:${column}: ${text}${source !== undefined ? ` (line ${line}: ${source})` : ''}`
}

function sourceLine(file: string, line: number): string | undefined {
  try {
    const text = readFileSync(file, 'utf8').split('\n')[line - 1]?.trim()
    return text === undefined || text === '' ? undefined : text.length > 120 ? `${text.slice(0, 117)}...` : text
  } catch {
    return undefined
  }
}

/** Node's parser names the line (and marks the column) of a syntax error only on `node --check`. */
function nodeCheck(file: string): { line: number; column: number } | undefined {
  try {
    execFileSync(process.execPath, ['--check', file], { stdio: 'pipe', timeout: 10_000 })
    return undefined
  } catch (error) {
    const output = String((error as { stderr?: Buffer }).stderr ?? '')
    const match = /^(.+):(\d+)\n(.*)\n( *)\^/m.exec(output)
    if (match === null) {
      const lineOnly = /^(.+):(\d+)$/m.exec(output)
      return lineOnly !== null ? { line: Number(lineOnly[2]), column: 1 } : undefined
    }
    return { line: Number(match[2]), column: match[4]!.length + 1 }
  }
}
