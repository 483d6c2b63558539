/** Turns the TASK argument (a module file, or a folder holding index.ts/index.js) into an absolute path. */
import { existsSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { ConfigError } from '@ringtrain/core'

const candidates = ['index.ts', 'index.js', 'index.mjs', 'task.ts', 'task.js']

export function resolveTaskPath(task: string, cwd = process.cwd()): string {
  const path = resolve(cwd, task)
  if (!existsSync(path)) {
    throw new ConfigError(`TASK '${task}' does not exist (looked for ${path}). Pass a task module (.ts or .js) or a folder that holds index.ts.`, { got: task })
  }
  if (!statSync(path).isDirectory()) return path
  for (const name of candidates) {
    const file = join(path, name)
    if (existsSync(file)) return file
  }
  throw new ConfigError(`TASK '${task}' is a folder without ${candidates.join(', ')}; expected one of them to default-export defineTask({...}).`, { got: task })
}
