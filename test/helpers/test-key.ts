/**
 * A job key for tests (Note [Job security] in @ringtrain/core): tests run their sockets
 * authenticated and encrypted, as users' jobs do. `testKeyFile()` writes it once per test
 * file into a private directory, removed after the file's tests, for child processes.
 */
import { generateJobKey, writePrivateKeyFile, type JobSecurity } from '@ringtrain/core'
import { afterAll } from 'vitest'

export const testKey = generateJobKey()
export const testSecurity: JobSecurity = { mode: 'key', key: testKey }

let file: { path: string; remove(): void } | undefined

export function testKeyFile(): string {
  if (file === undefined) {
    file = writePrivateKeyFile(testKey)
  }
  return file.path
}

afterAll(() => {
  file?.remove()
  file = undefined
})
