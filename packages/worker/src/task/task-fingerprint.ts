/**
 * A task's fingerprint: one short hash per field of its spec (model, loss, optimizer, data,
 * …), with every function hashed by its source text. Ranks compare rank 0's before step 0
 * (run/check-same-setup.ts), so that a host whose copy of the task module differs (an older
 * checkout, an edited learning rate) fails naming the field and the host instead of training
 * a different model. The fingerprint does not depend on where the file lies, so hosts may
 * keep the task at different paths (`ringtrain worker --task PATH`).
 *
 * What it cannot see: values a function reads from outside its own text (a constant of the
 * module, an environment variable, a data file). The gradient layout check and the training
 * plan check (sample counts) catch what of that changes the model or the data.
 */
import { createHash } from 'node:crypto'
import type { Task } from './define-task.js'

export type TaskFingerprint = Record<string, string>

export function taskFingerprint(task: Task): TaskFingerprint {
  const fields: TaskFingerprint = {}
  for (const key of Object.keys(task).sort()) {
    if (key === 'name') continue
    fields[key] = createHash('sha256').update(canonical((task as unknown as Record<string, unknown>)[key])).digest('hex').slice(0, 16)
  }
  return fields
}

/** The first field whose hash differs (or that only one side has), or undefined when they agree. */
export function firstDifferingField(a: TaskFingerprint, b: TaskFingerprint): string | undefined {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()
  return keys.find((key) => a[key] !== b[key])
}

/** JSON with sorted keys, functions as their source text, undefined kept apart from null. */
function canonical(value: unknown): string {
  if (typeof value === 'function') return `function:${value.toString()}`
  if (value === undefined) return 'undefined'
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>
    return `{${Object.keys(record).sort().map((key) => `${JSON.stringify(key)}:${canonical(record[key])}`).join(',')}}`
  }
  return JSON.stringify(value)
}
