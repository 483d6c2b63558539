import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ConfigError } from '@ringtrain/core'
import { isTask, type Task } from './define-task.js'
import { describeValue } from './describe-value.js'

/**
 * Imports the task module at `path` (relative to the working directory; `.ts` works when
 * the process runs under `node --import tsx`, `.js` always) and returns its default
 * export. Fails with `ConfigError` (`E_CONFIG`) naming the file when it cannot be imported
 * or its default export did not come from `defineTask`; a `ConfigError` thrown by the
 * module's own `defineTask` call passes through unchanged.
 */
export async function loadTask(path: string): Promise<Task> {
  const absolute = resolve(path)
  let module: Record<string, unknown>
  try {
    module = (await import(pathToFileURL(absolute).href)) as Record<string, unknown>
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause
    const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause)
    throw new ConfigError(`task '${path}' could not be imported: ${reason}`, { task: path, file: absolute }, { cause })
  }
  const task = module.default
  if (!isTask(task)) {
    const got =
      task === undefined
        ? 'has no default export'
        : typeof task === 'object' && task !== null
          ? 'default-exports an object that was not made by defineTask'
          : `default-exports ${describeValue(task)}`
    throw new ConfigError(`task '${path}' ${got}; a task module must \`export default defineTask({ ... })\`.`, { task: path, file: absolute })
  }
  return task
}
