/**
 * `--secret-file=-`: the job key as one JSON line on stdin (what `launch --hosts` sends down
 * ssh), so that it is never on a command line, in an environment variable or in a file on
 * the worker's machine. Only that line is read: the rest of stdin stays for
 * `--stop-with-stdin`.
 */
import { readSync } from 'node:fs'
import { ConfigError, parseJobKey, type JobKey } from '@ringtrain/core'

const MAX_LINE = 4096

export function readJobKeyFromStdin(fd = 0): JobKey {
  const bytes: number[] = []
  const one = Buffer.alloc(1)
  // Byte by byte, so that nothing after the line is taken from the stream.
  while (bytes.length < MAX_LINE) {
    let n: number
    try {
      n = readSync(fd, one, 0, 1, null)
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code
      // A non-blocking stdin with nothing yet: wait a little for the line, as a blocking read would.
      if (code === 'EAGAIN') {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10)
        continue
      }
      throw new ConfigError(`--secret-file=-: could not read the job key from stdin: ${(cause as Error).message}.`, { flag: 'secret-file', expected: 'the key file\'s JSON line on stdin', got: code ?? 'an error' }, { cause })
    }
    if (n === 0 && bytes.length === 0) break
    if (n === 0 || one[0] === 0x0a) return parseJobKey(Buffer.from(bytes).toString('utf8'), 'the job key on stdin (--secret-file=-)')
    bytes.push(one[0]!)
  }
  const got = bytes.length >= MAX_LINE ? `more than ${MAX_LINE} bytes without a newline` : 'nothing (stdin ended at once)'
  throw new ConfigError(`--secret-file=-: expected the job key file's JSON line on stdin (e.g. \`ringtrain worker --secret-file=- < job.key\`), got ${got}.`, { flag: 'secret-file', expected: 'one JSON line', got })
}
