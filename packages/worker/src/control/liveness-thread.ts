/**
 * The liveness thread of a worker process (a `worker_threads` Worker; see liveness.ts). It
 * owns a second DEALER to the coordinator, authenticated with the job's security like every
 * socket, and sends `Alive { token, step }` every intervalMs, whatever the main thread is
 * doing: a synchronous step of a minute does not silence it, a stopped process does.
 *
 * Shared memory with the main thread (`shared`): Int32 at byte 0 is the step the main thread
 * last published, Int32 at byte 4 the interval between Alive messages (ms; 0 = paused, until
 * the main thread hears a KeepAlive or the Assignment, which tell the job's rate); BigInt64 at byte 8 is
 * when this thread last heard the coordinator (ms); Float64 at byte 16 when the step last changed (ms).
 * The main thread posts `{ kind: 'position', position }` whenever its ProcessGroup's position
 * changes (once per call and per ring step); each Alive carries the latest (see `where`).
 * It ends on the message 'close': it closes its socket first (zeromq must not be torn down
 * with an open socket), answers 'closed' and lets the thread end.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { MessageType, connectControlClient, controlMessage, type Alive, type CollectivePosition, type JobSecurity, type MessageFields } from '@ringtrain/core'

export interface LivenessThreadData {
  endpoint: string
  jobId: string
  /** The secret of this worker's JoinRequest; never logged. */
  token: string
  security: JobSecurity
  shared: SharedArrayBuffer
  /** Names this worker in log lines: `rank 1`. */
  who: string
}

export type LivenessThreadReport = { kind: 'log'; line: string } | { kind: 'ready' } | { kind: 'closed' }

const port = parentPort!
const data = workerData as LivenessThreadData
const step = new Int32Array(data.shared, 0, 1)
const interval = new Int32Array(data.shared, 4, 1)
const heardAt = new BigInt64Array(data.shared, 8, 1)
const stepSince = new Float64Array(data.shared, 16, 1)
let position: CollectivePosition | undefined
const report = (message: LivenessThreadReport) => port.postMessage(message)

let closing = false
const socket = await connectControlClient(data.endpoint, () => `the liveness thread of ${data.who}`, {
  jobId: data.jobId,
  security: data.security,
  log: (line) => report({ kind: 'log', line: `liveness thread: ${line}` }),
  // Any answer, even one refused at the edge, proves the coordinator alive (as in the mailbox).
  onReceive: () => Atomics.store(heardAt, 0, BigInt(Date.now())),
})
// Dropped while the queue is backed up; silence is for the coordinator to judge.
const beat = () => {
  if (closing) return
  void socket.send(controlMessage(MessageType.Alive, data.jobId, { token: data.token, ...where(Date.now()) }), { droppable: true }).catch(() => undefined)
}

/**
 * The step and position an Alive reports. In a collective: the collective's. Between
 * collectives: the step the main thread last published, and since when it has been outside
 * any collective (the later of the call's end and the step's start), which is all a main
 * thread stuck in synchronous compute can say.
 */
function where(now: number): Omit<MessageFields<Alive>, 'token'> {
  const published = Atomics.load(step, 0)
  if (position === undefined) return { step: published }
  const { collective, op, phase, waitingFor, sinceMs } = position
  if (collective !== undefined) {
    return { step: position.step, op, collective, phase, ...(waitingFor !== undefined ? { waitingFor } : {}), inPhaseMs: Math.max(0, Math.round(now - sinceMs)) }
  }
  const since = Math.max(sinceMs, stepSince[0] ?? 0)
  return { step: published, op, phase, inPhaseMs: Math.max(0, Math.round(now - since)) }
}
let timer: NodeJS.Timeout | undefined
// Paused (interval 0) until the coordinator knows this worker's token: an Alive before the
// join would be dropped as a stranger's.
const loop = () => {
  const ms = Atomics.load(interval, 0)
  if (ms > 0) beat()
  timer = setTimeout(loop, ms > 0 ? ms : 20)
}
loop()
port.on('message', (message: unknown) => {
  if (typeof message === 'object' && message !== null && (message as { kind?: unknown }).kind === 'position') {
    position = (message as { position: CollectivePosition }).position
    return
  }
  if (message !== 'close' || closing) return
  closing = true
  clearTimeout(timer)
  void socket.close({ lingerMs: 0 }).finally(() => {
    report({ kind: 'closed' })
    port.close()
  })
})
report({ kind: 'ready' })
