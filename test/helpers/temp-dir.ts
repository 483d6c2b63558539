/** Folders and outputs of jobs a test runs. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'

/** A fresh folder under the system's temp folder, removed when the test ends. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Every rank's parameter hash from a job's summary.json. */
export function parameterHashesIn(out: string): string[] {
  return (JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { parameterHashes: string[] }).parameterHashes
}
