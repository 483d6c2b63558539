import { register } from 'node:module'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ConfigError } from '@ringtrain/core'
import { isTask, type Task } from './define-task.js'
import { describeValue } from './describe-value.js'
import { describeImportError } from './import-error.js'

/**
 * Imports the task module at `path` (relative to the working directory; `.ts` works when
 * the process runs under `node --import tsx`, `.js` always) and returns its default
 * export. Fails with `ConfigError` (`E_CONFIG`) naming the file when it cannot be imported
 * or its default export did not come from `defineTask`; a `ConfigError` thrown by the
 * module's own `defineTask` call passes through unchanged.
 */
export async function loadTask(path: string): Promise<Task> {
  shareModulesWithTasks()
  const absolute = resolve(path)
  let module: Record<string, unknown>
  try {
    module = (await import(pathToFileURL(absolute).href)) as Record<string, unknown>
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause
    const reason = describeImportError(cause, absolute)
    throw new ConfigError(`task '${path}' could not be imported: ${reason}${hintFor(reason)}`, { task: path, file: absolute }, { cause })
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

let hookRegistered = false

/** See shared-modules-hook.mjs: tasks outside the install import our tfjs and packages. */
function shareModulesWithTasks(): void {
  if (hookRegistered) return
  hookRegistered = true
  const root = new URL('../../../../', import.meta.url).href
  register(new URL('./shared-modules-hook.mjs', import.meta.url), { data: { base: import.meta.url, root } })
}

/**
 * Outside the install, only ES modules get the shared packages (shared-modules-hook.mjs:
 * Node 20's require() does not consult module hooks), so say how to make a task one.
 */
function hintFor(reason: string): string {
  if (!/Cannot find (module|package) '(@ringtrain\/|@tensorflow\/tfjs)/.test(reason)) return ''
  return '. Task modules are ES modules: name the file .mts (or .mjs), or put a package.json with "type": "module" beside it.'
}
