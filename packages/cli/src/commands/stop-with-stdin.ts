/**
 * `ringtrain worker --stop-with-stdin`: the worker ends when its stdin does. A worker that
 * `launch --hosts` starts over ssh keeps ssh's stdin open for its whole life; the launcher
 * closing it, exiting or dying, or the connection dropping, all end it (sshd signals nothing
 * to a session without a terminal, so this is what stops the worker then).
 *
 * The watching is done by a small process of its own, not by the worker's event loop: a
 * task's step can hold the main thread for long (or hang in native code), and a thread
 * blocked in a read would keep the worker from exiting. The watcher reads stdin to its end,
 * then sends its parent SIGTERM (and SIGKILL 5 s later if it still lives); it does nothing
 * once it is no longer the worker's child (the worker ended first: it kills the watcher at exit).
 */
import { spawn } from 'node:child_process'

const WATCHER = `
const { readSync } = require('node:fs')
const worker = Number(process.argv[1])
const pause = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
const buffer = Buffer.alloc(4096)
for (;;) {
  let n
  try { n = readSync(0, buffer, 0, buffer.length, null) } catch (error) { if (error.code === 'EAGAIN') { pause(100); continue } n = 0 }
  if (n === 0) break
}
const isChild = () => process.ppid === worker
if (isChild()) process.kill(worker, 'SIGTERM')
for (let i = 0; i < 50 && isChild(); i++) pause(100)
if (isChild()) process.kill(worker, 'SIGKILL')
`

export function stopWithStdin(): void {
  const watcher = spawn(process.execPath, ['-e', WATCHER, String(process.pid)], { stdio: [0, 'ignore', 'ignore'] })
  watcher.unref()
  process.on('exit', () => watcher.kill())
}
