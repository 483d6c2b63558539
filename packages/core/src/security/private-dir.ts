/**
 * Private directories for a process's secrets and sockets: the job key handed to local
 * workers, and the ipc socket files of the ring. `mkdtemp` makes them 0700, so other users
 * can neither read what is inside nor connect to a socket in it.
 *
 * A process killed with SIGKILL cannot remove its directory. Each one records its owner's
 * pid, and creating a directory with the same prefix removes those whose owner is gone, so
 * crashed runs do not leave them behind for long.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const OWNER_FILE = 'owner.pid'

/** A new 0700 directory `$TMPDIR/PREFIXxxxxxx`, after sweeping stale ones of the same prefix. */
export function makePrivateDirectory(prefix: string): string {
  sweepStale(prefix)
  const dir = mkdtempSync(join(tmpdir(), prefix))
  writeFileSync(join(dir, OWNER_FILE), `${process.pid}\n`, { mode: 0o600 })
  return dir
}

/** Removes the directories `$TMPDIR/PREFIX*` whose recorded owner is gone. */
export function sweepStale(prefix: string): void {
  let names: string[]
  try {
    names = readdirSync(tmpdir()).filter((name) => name.startsWith(prefix))
  } catch {
    return
  }
  for (const name of names) {
    const dir = join(tmpdir(), name)
    let pid: number
    try {
      pid = Number(readFileSync(join(dir, OWNER_FILE), 'utf8').trim())
    } catch {
      continue // not ours to judge (no owner file, or another user's directory)
    }
    if (Number.isInteger(pid) && pid > 0 && !isAlive(pid)) rmSync(dir, { recursive: true, force: true })
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: alive, and someone else's.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
