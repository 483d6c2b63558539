import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const framePath = /\(?((?:file:\/\/)?\/[^():]+|[A-Za-z]:\\[^():]+):\d+:\d+\)?\s*$/

/**
 * The file (relative to the working directory) of the first stack frame outside
 * `ownFile`, i.e. the module that called into it; `undefined` when the stack says nothing.
 * Used to name a task in messages by the file that defines it.
 */
export function callerFile(ownFile: string): string | undefined {
  const own = toPath(ownFile)
  for (const line of (new Error().stack ?? '').split('\n').slice(1)) {
    const match = framePath.exec(line)
    if (!match) continue
    const path = toPath(match[1]!)
    if (path === own || path === toPath(import.meta.url) || path.includes('/node_modules/') || path.startsWith('node:')) continue
    return relative(process.cwd(), path) || path
  }
  return undefined
}

function toPath(pathOrUrl: string): string {
  return pathOrUrl.startsWith('file://') ? fileURLToPath(pathOrUrl) : pathOrUrl
}
