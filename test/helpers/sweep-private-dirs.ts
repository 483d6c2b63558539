/**
 * vitest global set-up: after the whole run, removes the private directories (ipc sockets,
 * launcher key files) of processes that tests killed with SIGKILL or SIGSTOP, which cannot
 * remove their own (security/private-dir.ts records each directory's owner).
 */
import { sweepStale } from '@ringtrain/core/unstable-internals-do-not-import'

export function teardown(): void {
  sweepStale('ringtrain-')
}
