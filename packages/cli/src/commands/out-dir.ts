/**
 * Where a job's outputs go (docs/design.md, "Output files and write errors"). With `--out`:
 * that folder, as given. Without: a fresh `runs/<UTC time>-<job id>` folder of its own, and
 * `runs/latest`, a symbolic link, repointed at it atomically (a link made under a temporary
 * name, then renamed over `runs/latest`), so no earlier run's folder is touched and
 * `runs/latest` always names one whole run folder, never a half-switched one.
 */
import { randomBytes } from 'node:crypto'
import { lstat, mkdir, rename, rm, symlink } from 'node:fs/promises'
import { basename, join, relative } from 'node:path'
import { OutputWriteError, outputWriteError } from '@ringtrain/core'

export interface RunDirOptions {
  /** The folder of the run folders and the `latest` link: `runs` in the working folder by default. */
  runsDir: string
  /** The run's start, in the folder's name; now by default. */
  now?: Date
  log: (line: string) => void
}

/** `20261202T150606Z`: the UTC time, to the second, in a form every file system takes. */
export function runStamp(now: Date): string {
  return now.toISOString().replace(/\.\d+Z$/, 'Z').replaceAll('-', '').replaceAll(':', '')
}

/** The job id as a safe file name part: anything but letters, digits, `.`, `_` and `-` becomes `_`. */
export function safeName(jobId: string): string {
  const safe = jobId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64)
  return safe === '' || /^\.+$/.test(safe) ? 'job' : safe
}

/**
 * Creates a fresh `runsDir/<UTC time>-<job id>` (with `-2`, `-3`, … when that name is taken)
 * and points `runsDir/latest` at it. A `latest` that is a real folder or file (left by an older
 * ringtrain, or made by hand) is left alone, and the log says so. Returns the new folder, and
 * the link when it was repointed.
 * Throws an `OutputWriteError` naming the path and errno code when the folder or link cannot
 * be made.
 */
export async function createRunDir(jobId: string, options: RunDirOptions): Promise<{ runDir: string; latest?: string }> {
  const { runsDir, log } = options
  try {
    await mkdir(runsDir, { recursive: true })
  } catch (error) {
    throw asOutputError(error, runsDir, 'the runs folder')
  }
  const base = `${runStamp(options.now ?? new Date())}-${safeName(jobId)}`
  let runDir: string | undefined
  for (let n = 1; runDir === undefined; n++) {
    const candidate = join(runsDir, n === 1 ? base : `${base}-${n}`)
    try {
      await mkdir(candidate)
      runDir = candidate
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || n >= 1000) throw asOutputError(error, candidate, 'the run folder')
    }
  }
  const latest = await pointLatestAt(runDir, runsDir, log)
  return latest !== undefined ? { runDir, latest } : { runDir }
}

/** Returns the link, or undefined when a real folder or file was found there and left alone. */
async function pointLatestAt(runDir: string, runsDir: string, log: (line: string) => void): Promise<string | undefined> {
  const latest = join(runsDir, 'latest')
  const leftAlone = (what: string): undefined => void log(`${latest} is ${what} (not a link to a run folder, as an older ringtrain made it); left it alone. This run's outputs go to ${runDir}.`)
  const existing = await lstat(latest).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined
    throw asOutputError(error, latest, 'the latest-run link')
  })
  if (existing !== undefined && !existing.isSymbolicLink()) return leftAlone(existing.isDirectory() ? 'a real folder' : 'a file')
  const temporary = join(runsDir, `.latest.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    // Relative, so that the runs folder can be moved or copied with its link.
    await symlink(basename(runDir), temporary)
    await rename(temporary, latest)
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => {})
    const code = (error as NodeJS.ErrnoException).code
    // Another process made a real folder there in the meantime.
    if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') return leftAlone('a real folder')
    throw asOutputError(error, latest, `the latest-run link (to ${relative(runsDir, runDir)})`)
  }
  return latest
}

function asOutputError(error: unknown, path: string, what: string): unknown {
  const wrapped = outputWriteError(error, path, what)
  return wrapped instanceof OutputWriteError || !(wrapped instanceof Error) ? wrapped : new OutputWriteError(`could not write ${what} to ${path}: ${wrapped.message}`, { path, expected: 'a successful write', got: wrapped.message }, { cause: wrapped })
}
